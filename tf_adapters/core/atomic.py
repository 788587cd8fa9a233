"""Writing files and directories so a crash never leaves half of one."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(path, overwrite=True, marker=None):
    """Yields a temporary directory that replaces `path` on success.

    The temporary directory sits next to `path` (same filesystem), so the
    final step is a rename. On error it is removed and `path` is untouched.

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
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", dir=parent)
    try:
        yield tmp
        _fsync_tree(tmp)
        if os.path.exists(path):
            old = tmp + ".old"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(root):
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """Yields a temporary file name beside `path`; on success the file is
    synced and renamed to `path`, so `path` holds its old content or all of
    the new. On error the temporary file is removed."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=parent
    )
    os.close(fd)
    try:
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
