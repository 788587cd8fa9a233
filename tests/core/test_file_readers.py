"""The shared file readers refuse what a header claims but the file does
not hold, before allocating it (issue 20): `.npz` members, safetensors
headers, JSON documents and option files. Each refusal is a
`CorruptFileError` naming the file."""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from safetensors.numpy import save_file

from tf_adapters.core import safetensors_file
from tf_adapters.core.config_file import read_config_file
from tf_adapters.core.integrity import CorruptFileError
from tf_adapters.core.integrity import load_json
from tf_adapters.core.npz_file import read_npz

TERA = 10**12


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def _npz(**members):
    """`.npz` bytes of raw `{member name: bytes}`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _npy(array, shape=None):
    """`.npy` bytes of `array`, its header claiming `shape` if given."""
    out = io.BytesIO()
    np.save(out, array)
    data = out.getvalue()
    if shape is not None:
        old = f"'shape': {array.shape}".encode()
        new = f"'shape': {shape}".encode()
        end = data.index(b"\n")
        header = data[:end].replace(old, new)[:end].ljust(end, b" ")
        data = header + data[end:]
    return data


def _read_npz(path):
    return read_npz(path, "test weights", "Write them again")


def test_npz_headers_claiming_terabytes_are_refused(tmp_path):
    small = np.ones((2, 3), "float32")
    path = _write(tmp_path / "w.npz", _npz(**{"a.npy": _npy(small, (TERA,))}))
    with pytest.raises(
        CorruptFileError, match=r"w.npz.*shape \(1000000000000,\)"
    ):
        _read_npz(path)
    square = _npy(small, (10**6, 10**6))
    _write(tmp_path / "w.npz", _npz(**{"a.npy": square}))
    with pytest.raises(CorruptFileError, match="4000000000000 bytes.*holds 24"):
        _read_npz(path)


def test_npz_members_are_arrays_with_one_name_each(tmp_path):
    data = _npy(np.ones(3, "float32"))
    path = str(tmp_path / "w.npz")
    for members, match in [
        ({"a.npy": data, "b.txt": b"x"}, "'b.txt', which is not an .npy"),
        ({"a.npy": _npy(np.array([{}], dtype=object))}, "dtype object"),
    ]:
        _write(path, _npz(**members))
        with pytest.raises(CorruptFileError, match=match):
            _read_npz(path)
    out = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate"):
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("a.npy", data)
            archive.writestr("a.npy", data)
    _write(path, out.getvalue())
    with pytest.raises(CorruptFileError, match="two arrays named 'a'"):
        _read_npz(path)


def test_npz_member_sizes_are_bounded_by_the_file(tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.npy", _npy(np.zeros(1000, "float32")))
    data = bytearray(out.getvalue())
    # The central directory's uncompressed size: 4 GB from a few bytes.
    at = data.rindex(b"PK\x01\x02") + 24
    data[at : at + 4] = (2**32 - 2).to_bytes(4, "little")
    path = _write(tmp_path / "w.npz", bytes(data))
    with pytest.raises(CorruptFileError, match="holds 4294967294 bytes, more"):
        _read_npz(path)


def test_npz_arrays_read_back_exactly(tmp_path):
    arrays = {
        "f": np.arange(6, dtype="float32").reshape(2, 3),
        "i": np.arange(4, dtype=">i8"),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 4), "float16"),
    }
    path = str(tmp_path / "w.npz")
    np.savez_compressed(path, **arrays)
    found = _read_npz(path)
    for key, array in arrays.items():
        np.testing.assert_array_equal(found[key], array)
        assert found[key].dtype == array.dtype
    found["f"][0, 0] = 7  # writable, like np.load's


def test_json_duplicates_nesting_and_types_are_refused(tmp_path):
    path = str(tmp_path / "c.json")
    for text, match in [
        ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
        ('{"a": {"b": 1, "b": 1}}', "the key 'b' appears twice"),
        ("[" * 100_000, "nested too deeply"),
        ("[1, 2]", "holds a JSON array where a JSON object belongs"),
        ('{"a": "\udcff"}'.encode("utf-8", "surrogatepass"), "not valid JSON"),
    ]:
        _write(path, text if isinstance(text, bytes) else text.encode())
        with pytest.raises(CorruptFileError, match=f"c.json.*{match}.*Fix it"):
            load_json(path, "a config", "Fix it")


def _safetensors(tmp_path, header=None, length=None, data=None):
    """A safetensors file of one (3, 2) float32 tensor, its header (a
    dict), length field or data replaced."""
    path = str(tmp_path / "w.safetensors")
    save_file({"w": np.ones((3, 2), "float32")}, path)
    raw = open(path, "rb").read()
    size = int.from_bytes(raw[:8], "little")
    text = raw[8 : 8 + size] if header is None else json.dumps(header).encode()
    rest = raw[8 + size :] if data is None else data
    size = len(text) if length is None else length
    return _write(path, size.to_bytes(8, "little") + text + rest)


def _header(path):
    return safetensors_file.read_header(path, "test weights", "Copy it again")


def test_safetensors_headers_claiming_terabytes_are_refused(tmp_path):
    entry = {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 24]}
    path = _safetensors(tmp_path, header={"w": entry})
    with pytest.raises(CorruptFileError, match=r"\(4000000000000 bytes\)"):
        _header(path)
    entry["data_offsets"] = [0, 4 * TERA]  # consistent, but not in the file
    _safetensors(tmp_path, header={"w": entry})
    with pytest.raises(CorruptFileError, match="24 bytes of tensor data"):
        _header(path)
    _safetensors(tmp_path, length=2**63)
    with pytest.raises(CorruptFileError, match="more than the .*-byte file"):
        _header(path)


@pytest.mark.parametrize(
    "header, match",
    [
        ({"w": {"dtype": "F32", "shape": [3, 2]}}, "without exactly"),
        (
            {"w": {"dtype": "Q4", "shape": [3, 2], "data_offsets": [0, 24]}},
            "unknown dtype 'Q4'",
        ),
        (
            {"w": {"dtype": "F32", "shape": [-3, 2], "data_offsets": [0, 24]}},
            "not lists of non-negative integers",
        ),
        (
            {
                "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "v": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            },
            "overlap or leave gaps",
        ),
        ({"__metadata__": {"a": 1}}, "not a mapping of strings"),
    ],
)
def test_safetensors_header_entries_are_checked(tmp_path, header, match):
    path = _safetensors(tmp_path, header=header)
    with pytest.raises(CorruptFileError, match=match):
        _header(path)


def test_safetensors_repeated_names_are_refused(tmp_path):
    path = _safetensors(tmp_path)
    raw = open(path, "rb").read()
    size = int.from_bytes(raw[:8], "little")
    text = raw[8 : 8 + size].decode().rstrip()
    text = text[:-1] + ', "w": ' + json.dumps(json.loads(text)["w"]) + "}"
    _write(
        path, len(text).to_bytes(8, "little") + text.encode() + raw[8 + size :]
    )
    with pytest.raises(CorruptFileError, match="the key 'w' appears twice"):
        _header(path)


def test_safetensors_bfloat16_is_widened_exactly(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], "float32")
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    header = {"b": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}
    path = _safetensors(tmp_path, header=header, data=bits.tobytes())
    found = safetensors_file.read_tensors(_header(path))["b"]
    assert found.dtype == np.float32
    np.testing.assert_array_equal(found, values)


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("run.yaml", "rank: 4\nrank: 8\n", "the key 'rank' appears twice"),
        ("run.json", '{"rank": 4, "rank": 8}', "the key 'rank' appears twice"),
        ("run.yaml", "- lora\n", "must hold a mapping"),
        ("run.yaml", "1: lora\n", "must hold a mapping"),
        ("run.yaml", "method: [lora\n", "cannot be parsed"),
        ("run.json", "[" * 100_000, "nested too deeply"),
        ("run.yaml", b"method: \xff\n", "cannot be parsed.*utf-8"),
        ("run.yaml", "x: 1\n" * 300_000, "an options file holds at most"),
    ],
)
def test_option_files_are_one_mapping_of_options(tmp_path, name, text, match):
    data = text if isinstance(text, bytes) else text.encode()
    path = _write(tmp_path / name, data)
    with pytest.raises(CorruptFileError, match=f"{name} .*{match}"):
        read_config_file(path)


def test_option_files_keep_yaml_merge_keys(tmp_path):
    text = "base: &b {rank: 4}\nadapter:\n  <<: *b\n  rank: 8\n"
    path = _write(tmp_path / "run.yaml", text.encode())
    assert read_config_file(path)["adapter"] == {"rank": 8}
    assert not os.path.exists(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="missing.yaml not found"):
        read_config_file(str(tmp_path / "missing.yaml"))
