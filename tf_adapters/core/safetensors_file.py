"""Reading safetensors files in bounded memory, with their header checked.

A safetensors file is an 8-byte little-endian header length, a JSON header
`{name: {"dtype", "shape", "data_offsets"}}` and the tensors' bytes. The
header length is checked against the file size before the header is read,
and every tensor's shape and dtype against its offsets (which must tile
the data exactly) before anything is allocated: a header that claims
10^12 elements is refused in constant memory. bfloat16 tensors are widened
to float32 (exactly); numpy has no bfloat16.

Example:
>>> import os, tempfile, numpy as np
>>> from safetensors.numpy import save_file
>>> from tf_adapters.core import safetensors_file
>>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
>>> save_file({"w": np.ones((2, 3), "float32")}, path)
>>> header = safetensors_file.read_header(path, "weights", "Copy it again")
>>> header.tensors["w"].shape
(2, 3)
>>> safetensors_file.read_tensors(header)["w"].sum()
np.float32(6.0)
"""

import dataclasses
import math
import os

import numpy as np

from tf_adapters.core.integrity import corrupt
from tf_adapters.core.integrity import parse_json

# safetensors' own limit on the header.
MAX_HEADER_BYTES = 100_000_000
METADATA = "__metadata__"
# dtype name → (bytes per element, numpy dtype to read it as; None: numpy
# has none, refused when read).
DTYPES = {
    "BOOL": (1, "?"),
    "U8": (1, "u1"),
    "I8": (1, "i1"),
    "F8_E4M3": (1, None),
    "F8_E5M2": (1, None),
    "U16": (2, "<u2"),
    "I16": (2, "<i2"),
    "F16": (2, "<f2"),
    "BF16": (2, "<u2"),
    "U32": (4, "<u4"),
    "I32": (4, "<i4"),
    "F32": (4, "<f4"),
    "U64": (8, "<u8"),
    "I64": (8, "<i8"),
    "F64": (8, "<f8"),
}
_FIELDS = {"dtype", "shape", "data_offsets"}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of a safetensors file: dtype name, shape, and its bytes'
    offsets in the file."""

    dtype: str
    shape: tuple
    begin: int
    end: int


@dataclasses.dataclass
class Header:
    """A checked safetensors header: the file, what it is (for messages),
    its tensors by name and its `__metadata__`."""

    path: str
    what: str
    advice: str
    tensors: dict
    metadata: dict


def read_header(path, what, advice):
    """The checked header of safetensors file `path` (a `what`).

    Raises:
        CorruptFileError: for a header length beyond the file, a header
            that is not a JSON object of tensor entries (or repeats a
            name), a dtype we do not know, or offsets that do not match
            the shapes or do not tile the data; naming `path`.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)

    def fail(problem):
        return corrupt(path, what, problem, advice)

    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise fail(f"is {size} bytes, too short for a safetensors file")
        length = int.from_bytes(prefix, "little")
        if length > min(size - 8, MAX_HEADER_BYTES):
            raise fail(
                f"declares a {length}-byte header, more than the {size}-byte "
                "file holds; it is truncated or not a safetensors file"
            )
        raw = f.read(length)
    try:
        entries = parse_json(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise fail(f"has a header that is not valid JSON ({e})") from None
    if not isinstance(entries, dict):
        raise fail("has a header that is not a JSON object")
    metadata = entries.pop(METADATA, None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(v, str) for v in metadata.values()
    ):
        raise fail(f"has a {METADATA} that is not a mapping of strings")
    start = 8 + length
    tensors = {
        name: _tensor_info(name, entry, start, fail)
        for name, entry in entries.items()
    }
    _check_tiling(tensors, start, size, fail)
    return Header(path, what, advice, tensors, metadata)


def _tensor_info(name, entry, start, fail):
    if not isinstance(entry, dict) or set(entry) != _FIELDS:
        raise fail(
            f"has an entry for {name!r} without exactly {sorted(_FIELDS)}"
        )
    dtype, shape, offsets = (
        entry["dtype"],
        entry["shape"],
        entry["data_offsets"],
    )
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise fail(f"gives tensor {name!r} the unknown dtype {dtype!r}")
    if not _ints(shape) or not _ints(offsets) or len(offsets) != 2:
        raise fail(
            f"gives tensor {name!r} a shape {shape!r} or data_offsets "
            f"{offsets!r} that are not lists of non-negative integers"
        )
    begin, end = offsets
    nbytes = math.prod(shape) * DTYPES[dtype][0]
    if end - begin != nbytes:
        raise fail(
            f"declares tensor {name!r} of shape {tuple(shape)} and dtype "
            f"{dtype} ({nbytes} bytes) at offsets {offsets} "
            f"({end - begin} bytes)"
        )
    return TensorInfo(dtype, tuple(shape), start + begin, start + end)


def _ints(value):
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


def _check_tiling(tensors, start, size, fail):
    """The tensors' bytes must follow each other from the header's end to
    the file's end, as safetensors writes (and requires) them."""
    position = start
    for name, info in sorted(tensors.items(), key=lambda t: t[1].begin):
        if info.begin != position:
            raise fail(
                f"places tensor {name!r} at byte {info.begin - start} of the "
                f"data, where byte {position - start} was expected (tensors "
                "overlap or leave gaps)"
            )
        position = info.end
    if position != size:
        raise fail(
            f"has {size - start} bytes of tensor data where the header "
            f"accounts for {position - start}; it is truncated or damaged"
        )


def read_tensor(header, name):
    """Tensor `name` of a checked header, as a new numpy array (bfloat16
    widened to float32)."""
    info = header.tensors[name]
    nbytes, dtype = DTYPES[info.dtype]
    if dtype is None:
        raise corrupt(
            header.path,
            header.what,
            f"stores tensor {name!r} as {info.dtype}, which numpy cannot hold",
            header.advice,
        )
    count = (info.end - info.begin) // nbytes
    # Straight from the file into the array: no second copy.
    array = np.fromfile(
        header.path, dtype=dtype, count=count, offset=info.begin
    )
    if array.size != count:
        raise corrupt(
            header.path,
            header.what,
            f"was cut short while reading tensor {name!r}",
            header.advice,
        )
    array = array.reshape(info.shape)
    if info.dtype == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def read_tensors(header):
    """Every tensor of a checked header, by name."""
    return {name: read_tensor(header, name) for name in header.tensors}
