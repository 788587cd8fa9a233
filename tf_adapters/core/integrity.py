"""Reading the weights files we wrote: verified against the SHA-256 their
JSON records, and any damage reported as one error that names the file.

Example:
>>> import os, tempfile, numpy as np
>>> from tf_adapters.core import integrity
>>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
>>> np.savez(path, a=np.ones(3))
>>> digest = integrity.sha256_file(path)
>>> sorted(integrity.load_npz(path, digest, "an adapter", "Save it again"))
['a']
>>> with open(path, "r+b") as f:
...     _ = f.seek(40)
...     _ = f.write(b"x")
>>> try:
...     integrity.load_npz(path, digest, "an adapter", "Save it again")
... except integrity.CorruptFileError as e:
...     print("does not match the SHA-256 recorded" in str(e))
True
"""

import hashlib
import zipfile

import numpy as np

_CHUNK = 1 << 20


class CorruptFileError(ValueError):
    """A file we read is damaged: truncated, altered, or not what it claims
    to be. The message names the file and what to do."""


def sha256_file(path):
    """The hex SHA-256 of the file at `path`, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path, expected, what, advice):
    """Raises `CorruptFileError` unless the file's SHA-256 is `expected`
    (`None`: a file written before digests were recorded, not checked)."""
    if expected is None:
        return
    if not isinstance(expected, str) or sha256_file(path) != expected:
        raise CorruptFileError(
            f"{path} ({what}) does not match the SHA-256 recorded when it "
            f"was written: the file was changed or damaged since. {advice}."
        )


def load_npz(path, expected_sha256, what, advice):
    """`{name: array}` of a `.npz` file, verified first; a damaged file
    raises `CorruptFileError` naming it, never a zip or numpy error."""
    check_sha256(path, expected_sha256, what, advice)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError) as e:
        raise CorruptFileError(
            f"{path} ({what}) cannot be read ({type(e).__name__}: {e}); it "
            f"is truncated or damaged. {advice}."
        ) from None
