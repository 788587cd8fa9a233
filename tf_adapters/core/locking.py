"""File locks between processes: `file_lock` makes a second converter of a
shared cache folder wait for the first; `folder_lock` refuses a second run
in an output folder.

Both hold an exclusive `fcntl.flock` on a lock file. The kernel releases it
when its process ends, however it ends, so a lock left by a killed run is
free: the owner recorded in the file (pid, host, start time) is then stale
and is taken over. Linux's NFS client maps `flock` to NFS locks, so the lock
also holds between hosts sharing the folder.

Example:
>>> import os, tempfile
>>> from tf_adapters.core.locking import FolderLockedError, folder_lock
>>> folder = tempfile.mkdtemp()
>>> with folder_lock(folder):
...     try:
...         with folder_lock(folder):
...             pass
...     except FolderLockedError as e:
...         print("in use by another run" in str(e))
True
>>> os.listdir(folder)  # released
[]
"""

import contextlib
import datetime
import fcntl
import json
import logging
import os
import socket

log = logging.getLogger(__name__)

LOCK_FILE = ".tf_adapters.lock"


class FolderLockedError(FileExistsError):
    """Another run, still running, holds the folder's lock."""


def _locked_fd(path, blocking):
    """A descriptor of `path` that holds its exclusive lock, or `None` when
    another process holds it (and not `blocking`)."""
    flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        # The holder before us removed the file as it let go: only the
        # file now at `path` counts.
        os.close(fd)


def _same_file(fd, path):
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


@contextlib.contextmanager
def file_lock(path, waiting=None):
    """Holds the exclusive lock of file `path` (created if missing and left
    in place), waiting for another process that holds it.

    Args:
        path: str. The lock file.
        waiting: str. Logged when the lock is held by another process and
            this one waits. Defaults to `None` (a generic message).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = _locked_fd(path, blocking=False)
    if fd is None:
        log.info("%s; waiting for it", waiting or f"{path} is locked")
        fd = _locked_fd(path, blocking=True)
    try:
        yield
    finally:
        os.close(fd)


def _owner_text(owner):
    if not owner:
        return "an unknown process (the lock file is being written)"
    return (
        f"pid {owner.get('pid')} on host {owner.get('host')!r}, started "
        f"{owner.get('started')}"
    )


def _read_owner(path):
    """The owner recorded in lock file `path`, `{}` if it is empty, or
    `None` if it is unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        owner = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _pid_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _check_stale(path, owner):
    """Logs why a free lock's recorded owner is gone; raises for an owner
    on another host, whose process cannot be checked from here."""
    if owner == {}:
        return
    if owner is None:
        log.warning("Taking over the unreadable lock file %s", path)
        return
    host, pid = owner.get("host"), owner.get("pid")
    if host != socket.gethostname():
        raise FolderLockedError(
            f"{os.path.dirname(path)} is locked by {_owner_text(owner)}, a "
            f"process on another host that cannot be checked from here. If "
            f"that run has ended, delete {path} and run again."
        )
    state = (
        "is not running"
        if not isinstance(pid, int) or not _pid_running(pid)
        else "is now another process"
    )
    log.warning(
        "Taking over the stale lock %s: its owner (%s) %s.",
        path,
        _owner_text(owner),
        state,
    )


@contextlib.contextmanager
def folder_lock(folder):
    """Holds `folder`'s lock file (`.tf_adapters.lock`) for this process,
    recording its pid, host and start time; raises `FolderLockedError` if a
    running process holds it. A lock left by a process that ended (killed,
    or on this host no longer running) or an unreadable lock file is taken
    over with a warning. On exit the lock file is removed, and `folder`
    too if this call created it and it is still empty.

    Args:
        folder: str. The folder to lock (created if missing).
    """
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_FILE)
    fd = _locked_fd(path, blocking=False)
    if fd is None:
        raise FolderLockedError(
            f"{folder} is in use by another run: "
            f"{_owner_text(_read_owner(path))} holds {path}. Wait for it to "
            "finish, or choose another output folder."
        )
    try:
        _check_stale(path, _read_owner(path))
    except BaseException:
        os.close(fd)  # the file is another host's: left as it is
        raise
    try:
        now = datetime.datetime.now().astimezone()
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": now.isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        os.fsync(fd)
        yield path
    finally:
        try:
            os.remove(path)  # while holding the lock: see `_locked_fd`
        finally:
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only if still empty
