"""Reading a GGUF file (llama.cpp's format) with every length checked.

The header holds metadata (`key → value`) and tensor infos (name, dims,
type, offset); the tensors' bytes follow. Every string length, array count
and tensor extent the header declares is checked against the bytes left in
the file before it is read, so a header that claims 10^12 elements (or a
string of 2^63 bytes) is refused in constant memory, and tensors may not
overlap. Tensors are read one at a time, as copies; nothing stays mapped.

Example:
>>> import os, tempfile, numpy as np, gguf
>>> from tf_adapters.models.gguf.gguf_file import read_gguf
>>> path = os.path.join(tempfile.mkdtemp(), "m.gguf")
>>> writer = gguf.GGUFWriter(path, "llama")
>>> writer.add_tensor("w", np.ones((2, 3), "float32"))
>>> for write in (writer.write_header_to_file, writer.write_kv_data_to_file,
...               writer.write_tensors_to_file):
...     write()
>>> writer.close()
>>> found = read_gguf(path)
>>> found.fields["general.architecture"], found.tensors["w"].shape
('llama', (2, 3))
>>> found.dequantize("w").sum()
np.float32(6.0)
"""

import dataclasses
import mmap
import os
import struct

import numpy as np

from tf_adapters.core.integrity import corrupt

MAGIC = b"GGUF"
VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
DEFAULT_ALIGNMENT = 32
ADVICE = "Download or convert the model again"
WHAT = "GGUF model"
# Metadata value types: scalars by their struct format; 8 and 9 are
# strings and arrays.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY, _UINT32 = 8, 9, 4
# The fewest bytes a key/value pair and a tensor info take.
_MIN_KV = 8 + 4 + 1
_MIN_TENSOR = 8 + 4 + 4 + 8


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor: its GGML type, numpy-order shape (GGUF dims reversed),
    absolute byte offset and size."""

    name: str
    type: int
    shape: tuple
    offset: int
    nbytes: int


@dataclasses.dataclass
class GGUFFile:
    """The checked header of a GGUF file: metadata values and their
    GGUF value types by key, and tensor infos by name."""

    path: str
    fields: dict
    field_types: dict
    tensors: dict

    def dequantize(self, name):
        """Tensor `name` as a new float32 array of its numpy-order shape."""
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        info = self.tensors[name]
        raw = np.fromfile(
            self.path, dtype=np.uint8, count=info.nbytes, offset=info.offset
        )
        if raw.size != info.nbytes:
            raise _fail(self.path, f"was cut short in tensor {name!r}")
        block, size = _quant_size(info.type)
        byte_shape = info.shape[:-1] + (info.shape[-1] // block * size,)
        try:
            values = dequantize(
                raw.reshape(byte_shape), GGMLQuantizationType(info.type)
            )
        except NotImplementedError:
            raise _fail(
                self.path,
                f"stores tensor {name!r} as GGML type "
                f"{GGMLQuantizationType(info.type).name}, which cannot be "
                "dequantized here",
            ) from None
        return np.array(values, dtype=np.float32).reshape(info.shape)


def _fail(path, problem):
    return corrupt(path, WHAT, problem, ADVICE)


def _quant_size(type_id):
    """`(block size, bytes per block)` of GGML type `type_id`, or `None`."""
    from gguf import GGML_QUANT_SIZES
    from gguf import GGMLQuantizationType

    try:
        return GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    except (ValueError, KeyError):
        return None


class _Cursor:
    """Reads little-endian values from a buffer, refusing any read that
    would run past its end."""

    def __init__(self, buffer, path):
        self.buffer = buffer
        self.size = len(buffer)
        self.path = path
        self.pos = 0

    def fail(self, problem):
        return _fail(self.path, f"at byte {self.pos}: {problem}")

    def take(self, count, what):
        if count > self.size - self.pos:
            raise self.fail(
                f"{what} of {count} bytes runs past the end of the "
                f"{self.size}-byte file; it is truncated or damaged"
            )
        start = self.pos
        self.pos += count
        return start

    def scalar(self, fmt):
        start = self.take(struct.calcsize(fmt), "a number")
        return struct.unpack_from(fmt, self.buffer, start)[0]

    def string(self):
        length = self.scalar("<Q")
        start = self.take(length, "a string")
        try:
            return self.buffer[start : start + length].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string that is not UTF-8") from None

    def count(self, least, what):
        """A u64 count of items of at least `least` bytes each."""
        count = self.scalar("<Q")
        if count * least > self.size - self.pos:
            raise self.fail(
                f"{count} {what} cannot fit in the {self.size - self.pos} "
                "bytes left"
            )
        return count

    def value(self, kind, nested=False):
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY or nested:
            raise self.fail(f"a value of unknown type {kind}")
        item = self.scalar("<I")
        if item in _SCALARS:
            fmt = _SCALARS[item]
            count = self.count(struct.calcsize(fmt), "array items")
            start = self.take(count * struct.calcsize(fmt), "an array")
            return list(
                struct.unpack_from(f"<{count}{fmt[1]}", self.buffer, start)
            )
        if item == _STRING:
            return [self.string() for _ in range(self.count(8, "strings"))]
        raise self.fail(f"an array of unknown or nested type {item}")


def read_gguf(path):
    """The checked header of GGUF file `path`.

    Raises:
        CorruptFileError: for anything the header declares that the file
            does not hold (strings, arrays or tensors past its end,
            overlapping tensors), unknown types, repeated keys or tensor
            names, or a big-endian or unknown version; naming `path`.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 24:
            raise _fail(path, "is too short for a GGUF header")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            cursor = _Cursor(buffer, path)
            fields, types, infos = _read_header(cursor)
            alignment = _alignment(cursor, fields, types)
            data_start = -(-cursor.pos // alignment) * alignment
            size = cursor.size
    tensors = _place_tensors(path, infos, data_start, alignment, size)
    return GGUFFile(path, fields, types, tensors)


def _read_header(cursor):
    if cursor.buffer[:4] != MAGIC:
        raise _fail(cursor.path, "does not start with the GGUF magic bytes")
    cursor.pos = 4
    version = cursor.scalar("<I")
    if version not in VERSIONS:
        raise cursor.fail(
            f"GGUF version {version} (or a big-endian file); versions "
            f"{list(VERSIONS)} are read"
        )
    tensor_count = cursor.scalar("<Q")
    kv_count = cursor.count(_MIN_KV, "metadata entries")
    if tensor_count * _MIN_TENSOR > cursor.size - cursor.pos:
        raise cursor.fail(f"{tensor_count} tensor infos cannot fit")
    fields, types = {}, {}
    for _ in range(kv_count):
        key = cursor.string()
        if key in fields:
            raise cursor.fail(f"the metadata key {key!r} appears twice")
        types[key] = cursor.scalar("<I")
        fields[key] = cursor.value(types[key])
    infos = [_tensor_info(cursor) for _ in range(tensor_count)]
    return fields, types, infos


def _tensor_info(cursor):
    name = cursor.string()
    n_dims = cursor.scalar("<I")
    if not 1 <= n_dims <= MAX_DIMS:
        raise cursor.fail(f"tensor {name!r} has {n_dims} dimensions")
    dims = [cursor.scalar("<Q") for _ in range(n_dims)]
    kind = cursor.scalar("<I")
    offset = cursor.scalar("<Q")
    sizes = _quant_size(kind)
    if sizes is None:
        raise cursor.fail(f"tensor {name!r} has unknown GGML type {kind}")
    block, per_block = sizes
    if dims[0] % block:
        raise cursor.fail(
            f"tensor {name!r} has rows of {dims[0]} values, not a multiple "
            f"of its type's block of {block}"
        )
    count = 1
    for d in dims:
        count *= d
    shape = tuple(reversed(dims))
    return TensorInfo(name, kind, shape, offset, count // block * per_block)


def _alignment(cursor, fields, types):
    value = fields.get("general.alignment", DEFAULT_ALIGNMENT)
    kind = types.get("general.alignment", _UINT32)
    if kind != _UINT32 or value <= 0 or value & (value - 1):
        raise cursor.fail(
            f"general.alignment is {value!r}; a power of two is expected"
        )
    return value


def _place_tensors(path, infos, data_start, alignment, size):
    """`{name: TensorInfo}` with absolute offsets, each tensor inside the
    file, aligned, and none overlapping another."""
    tensors, end = {}, data_start
    for info in sorted(infos, key=lambda t: t.offset):
        start = data_start + info.offset
        problem = None
        if info.name in tensors:
            problem = f"has two tensors named {info.name!r}"
        elif info.offset % alignment:
            problem = f"places tensor {info.name!r} at an unaligned offset"
        elif start < end:
            problem = f"has tensor {info.name!r} overlapping another"
        elif start + info.nbytes > size:
            problem = (
                f"declares tensor {info.name!r} of shape {info.shape} "
                f"({info.nbytes} bytes at byte {start}), past the end of the "
                f"{size}-byte file"
            )
        if problem:
            raise _fail(path, problem)
        tensors[info.name] = dataclasses.replace(info, offset=start)
        end = start + info.nbytes
    return {info.name: tensors[info.name] for info in infos}
