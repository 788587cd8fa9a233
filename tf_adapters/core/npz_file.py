"""Reading `.npz` files (what `np.savez` writes) in bounded memory.

Each member's `.npy` header (shape and dtype) is read first and checked
against the bytes the member holds, and each member's size against the
file's, before an array is allocated: a header that claims 10^12 elements
is refused in constant memory. Nothing is unpickled; anything wrong is a
`CorruptFileError` naming the file.

`load_npz` verifies the file's SHA-256 first (a flipped bit is caught,
not only a cut).

Example:
>>> import os, tempfile, numpy as np
>>> from tf_adapters.core import integrity, npz_file
>>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
>>> np.savez(path, a=np.ones((2, 3), "float32"))
>>> digest = integrity.sha256_file(path)
>>> npz_file.load_npz(path, digest, "weights", "Save them again")["a"].shape
(2, 3)
>>> with open(path, "r+b") as f:
...     _ = f.seek(40)
...     _ = f.write(b"x")
>>> try:
...     npz_file.load_npz(path, digest, "weights", "Save them again")
... except integrity.CorruptFileError as e:
...     print("does not match the SHA-256 recorded" in str(e))
True
"""

import math
import os
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from tf_adapters.core.integrity import CorruptFileError
from tf_adapters.core.integrity import check_sha256
from tf_adapters.core.integrity import corrupt

# Deflate cannot expand data more than about 1032 times: a member that
# claims more than that is lying about its size.
_MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20
_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
# What a damaged zip or .npy header raises from zipfile, zlib and numpy.
_DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    NotImplementedError,
    OverflowError,
    RuntimeError,
    # numpy parses the header's dict as Python literals
    SyntaxError,
    tokenize.TokenError,
    RecursionError,
)


def load_npz(path, expected_sha256, what, advice):
    """`{name: array}` of a `.npz` file we wrote, verified against the
    SHA-256 its JSON records (`None`: an older file, not checked), then
    read with `read_npz`."""
    check_sha256(path, expected_sha256, what, advice)
    return read_npz(path, what, advice)


def read_npz(path, what, advice):
    """`{name: array}` of the `.npz` file at `path` (a `what`, e.g.
    "adapter weights").

    Raises:
        CorruptFileError: for a file that is not a zip of `.npy` arrays, a
            member whose header disagrees with its size, an object array,
            or two arrays of one name; naming `path` and giving `advice`.
    """
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_members(path, what, advice, infos, size)
            return {
                info.filename[:-4]: _read_member(
                    archive, info, path, what, advice
                )
                for info in infos
            }
    except CorruptFileError:
        raise
    except _DAMAGE as e:
        raise corrupt(
            path,
            what,
            f"cannot be read ({type(e).__name__}: {e}); it is truncated or "
            "damaged",
            advice,
        ) from None


def _check_members(path, what, advice, infos, size):
    seen = set()
    for info in infos:
        name = info.filename
        problem = None
        if not name.endswith(".npy"):
            problem = f"holds {name!r}, which is not an .npy array"
        elif name in seen:
            problem = f"holds two arrays named {name[:-4]!r}"
        elif info.flag_bits & 1:
            problem = f"holds an encrypted member {name!r}"
        elif info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
        ):
            problem = f"compresses {name!r} with an unsupported method"
        elif info.compress_size > size or info.file_size > _limit(info):
            problem = (
                f"says its member {name!r} holds {info.file_size} bytes, "
                f"more than the {size}-byte file can"
            )
        if problem:
            raise corrupt(path, what, problem, advice)
        seen.add(name)


def _limit(info):
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size
    return info.compress_size * _MAX_DEFLATE_RATIO + 64


def _read_member(archive, info, path, what, advice):
    name = info.filename[:-4]
    with archive.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version not in _READERS:
            raise corrupt(
                path,
                what,
                f"has array {name!r} in .npy format {version}",
                advice,
            )
        shape, fortran_order, dtype = _READERS[version](fp)
        if dtype.hasobject or dtype.itemsize == 0:
            raise corrupt(
                path,
                what,
                f"has array {name!r} of dtype {dtype}, which is not numbers "
                "(objects are not unpickled)",
                advice,
            )
        count = math.prod(shape)
        held = info.file_size - fp.tell()
        if count * dtype.itemsize != held:
            raise corrupt(
                path,
                what,
                f"declares array {name!r} of shape {shape} and dtype {dtype} "
                f"({count * dtype.itemsize} bytes) but holds {held} bytes",
                advice,
            )
        array = np.empty(count, dtype=dtype)
        # In chunks, straight into the array: no second copy of the data.
        raw, done = array.view(np.uint8), 0
        while done < held:
            chunk = fp.read(min(_CHUNK, held - done))
            if not chunk:
                raise corrupt(
                    path, what, f"has array {name!r} cut short", advice
                )
            raw[done : done + len(chunk)] = np.frombuffer(chunk, np.uint8)
            done += len(chunk)
    return array.reshape(shape, order="F" if fortran_order else "C")
