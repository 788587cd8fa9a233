"""Writing files and directories so a crash never leaves half of one.

A write that fails because the disk is full raises `SaveError`, naming the
path; what was at the path before is left as it was, and the temporary copy
is removed.
"""

import contextlib
import errno
import os
import shutil
import tempfile

# errno values (and their texts, for libraries such as TensorFlow and h5py
# that report them inside other errors) that mean "no room to write".
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_TEXTS = tuple(os.strerror(code) for code in DISK_FULL)


class SaveError(OSError):
    """A save failed because the disk is full (or the disk quota is used
    up). The message names the path that could not be written; what was
    at that path before (the previous checkpoint, training state or
    SavedModel version) is intact and no temporary file is left behind.

    A subclass of `OSError` with `errno` `ENOSPC` (or `EDQUOT`) and
    `filename` set to the path, so `except OSError` still catches it.

    Args:
        path: str. What could not be written.
        error: OSError. The failure (`ENOSPC` or `EDQUOT`, or TensorFlow's
            `ResourceExhaustedError` saying the disk is full).

    Example:
    >>> import errno
    >>> import tf_adapters as tfa
    >>> error = tfa.SaveError(
    ...     "runs/a/adapter", OSError(errno.ENOSPC, "No space left on device"))
    >>> error.errno == errno.ENOSPC, error.filename
    (True, 'runs/a/adapter')
    >>> print(error)  # doctest: +ELLIPSIS
    Could not write runs/a/adapter: the disk is full (No space left ...
    """

    def __init__(self, path, error):
        code = getattr(error, "errno", None)
        if code not in DISK_FULL:
            quota = os.strerror(errno.EDQUOT) in str(error)
            code = errno.EDQUOT if quota else errno.ENOSPC
        if code == errno.EDQUOT:
            reason = "the disk quota is used up"
        else:
            reason = "the disk is full"
        super().__init__(
            code,
            f"Could not write {path}: {reason} ({os.strerror(code)}). What "
            f"was at {path} before is unchanged and no partial copy was "
            "left; free some space (or choose a folder on another disk) and "
            "save again.",
        )
        self.filename = path

    def __str__(self):
        return self.strerror


def is_disk_full(error):
    """Whether `error` says the disk (or the quota) is full: an `OSError`
    with `ENOSPC` / `EDQUOT`, or an error of another library whose message
    carries that text (TensorFlow reports `ENOSPC` as a
    `ResourceExhaustedError`)."""
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return True
    return any(text in str(error) for text in DISK_FULL_TEXTS)


@contextlib.contextmanager
def _disk_full_as_save_error(path):
    try:
        yield
    except SaveError:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise SaveError(path, e) from e
        raise


@contextlib.contextmanager
def atomic_directory(path, overwrite=True, marker=None):
    """Yields a temporary directory that replaces `path` on success.

    The temporary directory sits next to `path` (same filesystem), so the
    final step is a rename. On error it is removed and `path` is untouched;
    a full disk raises `SaveError` naming `path`.

    Args:
        path: str. The directory to create or replace.
        overwrite: bool. Replace an existing `path`. Defaults to `True`.
        marker: str. A file that an existing `path` must contain before it
            is replaced, so that an unrelated directory is never deleted.
            Defaults to `None`.
    """
    path = os.path.abspath(path)
    if os.path.exists(path):
        if not overwrite:
            raise FileExistsError(
                f"{path} already exists; pass `overwrite=True` to replace it."
            )
        if not os.path.isdir(path) or (
            marker
            and os.listdir(path)
            and not os.path.exists(os.path.join(path, marker))
        ):
            raise FileExistsError(
                f"{path} exists and is not a tf_adapters checkpoint; refusing "
                "to replace it. Choose another path."
            )
    parent = os.path.dirname(path)
    with _disk_full_as_save_error(path):
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", dir=parent)
        # `mkdtemp` makes the folder private (0700); the finished one gets
        # the mode a plain `mkdir` would (e.g. readable by TF Serving).
        os.chmod(tmp, _mode(0o777))
    try:
        with _disk_full_as_save_error(path):
            yield tmp
            _fsync_tree(tmp)
            _replace_directory(tmp, path, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _mode(full):
    """`full` (0o777 or 0o666) less the process's umask."""
    return full & ~_umask()


def _umask():
    # Read where Linux shows it: setting it to read it back would change
    # it for a moment for every thread.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _replace_directory(new, path, overwrite):
    """Renames `new` to `path`; an existing `path` is renamed aside first
    and put back if the second rename fails. Without `overwrite`, a `path`
    that appeared meanwhile makes the rename fail (it is never replaced)."""
    if not overwrite or not os.path.exists(path):
        os.rename(new, path)
        return
    old = new + ".old"
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old)


def _fsync_tree(root):
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """Yields a temporary file name beside `path`; on success the file is
    synced and renamed to `path`, so `path` holds its old content or all of
    the new. On error the temporary file is removed; a full disk raises
    `SaveError` naming `path`."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    with _disk_full_as_save_error(path):
        os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=parent
        )
    os.close(fd)
    # `mkstemp` makes the file private (0600); give it a plain `open`'s.
    os.chmod(tmp, _mode(0o666))
    try:
        with _disk_full_as_save_error(path):
            yield tmp
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
