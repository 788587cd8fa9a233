"""XLA's persistent compilation cache, on for the command line's runs.

With `--jit-compile` (off by default), XLA compiles each training and
evaluation function on its first call (about 20 s of the embedded model's
first step on 2 cores). TensorFlow can
keep the compiled programs on disk (`--tf_xla_persistent_cache_directory`
in `TF_XLA_FLAGS`) and load one when a later run compiles the same program:
same model, method, shapes and TensorFlow version. TensorFlow checks the
whole program before it uses an entry, and writes each entry to a
temporary file that it renames, so runs side by side are safe.

`enable` must run before the process's first XLA compilation; TensorFlow
reads the flag then. This module imports nothing heavy, so the command line
calls it before TensorFlow loads.

- `TF_ADAPTERS_XLA_CACHE=off` (or `0`) turns the cache off; a path puts
  it there instead of `$TF_ADAPTERS_CACHE/xla` (default
  `~/.cache/tf_adapters/xla`).
- A `TF_XLA_FLAGS` that already names a cache directory is left alone.
- The folder is kept under `max_bytes` (least recently used entries go
  first); nothing is cached when the disk has less than `min_free_bytes`.
"""

import glob
import importlib.metadata
import logging
import os
import platform
import shutil
import time

from tf_adapters.core.cache import cache_dir

log = logging.getLogger(__name__)

CACHE_ENV = "TF_ADAPTERS_XLA_CACHE"
FLAG = "--tf_xla_persistent_cache_directory"
MAX_BYTES = 2 << 30
MIN_FREE_BYTES = 2 << 30
STALE_TMP_SECONDS = 3600


def default_directory():
    """`$TF_ADAPTERS_XLA_CACHE` if it is a path, else `xla/` in the
    package's cache (`$TF_ADAPTERS_CACHE`, or `~/.cache/tf_adapters`)."""
    value = os.environ.get(CACHE_ENV, "")
    if value and value.lower() not in ("off", "0", "false", "no"):
        return value
    return os.path.join(cache_dir(), "xla")


def enable(
    directory=None,
    max_bytes=MAX_BYTES,
    min_free_bytes=MIN_FREE_BYTES,
    environ=None,
):
    """Turns the persistent cache on in `environ` (`os.environ`).

    Compiled programs go to `directory/tf-VERSION-MACHINE` (one folder per
    TensorFlow version, whose programs another version must not load).
    Call it before anything compiles with XLA.

    Args:
        directory: str or None. The cache's root; `None` is
            `default_directory()`.
        max_bytes: int. The root is pruned to this size, least recently
            used entries first.
        min_free_bytes: int. With less free disk than this, nothing is
            cached (a full disk must not fail a run).
        environ: mapping or None. The environment to change (tests pass a
            dict).

    Returns:
        The folder programs are cached in, or `None` if the cache stays
        off (turned off, already set by the user, or no room).

    Example:
    >>> import tempfile
    >>> from tf_adapters.pipeline import xla_cache
    >>> env = {}
    >>> folder = xla_cache.enable(tempfile.mkdtemp(), environ=env)
    >>> env["TF_XLA_FLAGS"] == xla_cache.FLAG + "=" + folder
    True
    >>> xla_cache.enable(environ={"TF_ADAPTERS_XLA_CACHE": "off"}) is None
    True
    """
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV, "").lower() in ("off", "0", "false", "no"):
        return None
    flags = environ.get("TF_XLA_FLAGS", "")
    if FLAG in flags:
        return None  # the user's own cache
    root = directory or default_directory()
    folder = os.path.join(root, f"tf-{_tf_version()}-{platform.machine()}")
    try:
        os.makedirs(folder, exist_ok=True)
        prune(root, max_bytes)
        free = shutil.disk_usage(folder).free
    except OSError as e:
        log.debug("XLA cache off: %s", e)
        return None
    if free < min_free_bytes:
        log.debug("XLA cache off: %d bytes free in %s", free, folder)
        return None
    environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={folder}".strip()
    return folder


def prune(root, max_bytes):
    """Deletes cache entries under `root` until their total is at most
    `max_bytes`, the least recently used first (never one used in the last
    hour, which a run may be reading), and temporary files that a killed
    run left (older than an hour). Returns the bytes deleted.

    Example:
    >>> import os, tempfile
    >>> from tf_adapters.pipeline import xla_cache
    >>> root = tempfile.mkdtemp()
    >>> for i, name in enumerate(["old.pb", "new.pb"]):
    ...     path = os.path.join(root, name)
    ...     _ = open(path, "wb").write(b"x" * 10)
    ...     os.utime(path, (i, i))
    >>> xla_cache.prune(root, max_bytes=15)
    10
    >>> os.listdir(root)
    ['new.pb']
    """
    entries, deleted = [], 0
    now = time.time()
    for path in glob.glob(os.path.join(root, "**", "*"), recursive=True):
        try:
            stat = os.stat(path)
        except OSError:
            continue
        if not os.path.isfile(path):
            continue
        if ".tmp" in os.path.basename(path):
            if now - stat.st_mtime > STALE_TMP_SECONDS:
                deleted += _remove(path, stat.st_size)
            continue
        entries.append((max(stat.st_atime, stat.st_mtime), stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for used, size, path in sorted(entries):
        if total <= max_bytes or now - used < STALE_TMP_SECONDS:
            break  # a run may be reading an entry it used this hour
        deleted += _remove(path, size)
        total -= size
    return deleted


def _remove(path, size):
    try:
        os.remove(path)
    except OSError:
        return 0
    return size


def _tf_version():
    try:
        return importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
