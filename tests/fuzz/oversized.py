"""Files whose headers claim terabytes, and the probe that reads them in a
fresh process and reports its peak memory.

`write_cases(folder)` writes, from the fuzzers' real seed files, one or
more files per binary format whose header declares about 10^12 elements
(a string or array of 2^62 items for GGUF, a 2^63-byte header for
safetensors), plus a positive control: a real 24 MB array, which must show
up in the measurement. `probe(cases)` runs `memory_probe.py` on them and
returns its rows.
"""

import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile

import numpy as np
from fuzz import corpus

TERA = 10**12
PROBE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "memory_probe.py"
)


def _npy_claiming(member, shape):
    """`.npy` bytes whose header says `shape` (its length kept)."""
    match = re.search(rb"'shape': \(.*?\)", member)
    new = f"'shape': {shape}".encode()
    start, end = match.span()
    newline = member.index(b"\n", end)
    header = member[start:newline].replace(match.group(), new)
    header = header[: newline - start].ljust(newline - start, b" ")
    return member[:start] + header + member[newline:]


def _npz_claiming(data, shape):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        with zipfile.ZipFile(out, "w") as archive:
            for i, info in enumerate(source.infolist()):
                member = source.read(info)
                if i == 0:
                    member = _npy_claiming(member, shape)
                archive.writestr(info.filename, member)
    return out.getvalue()


def _gguf_with(data, name, fields):
    """GGUF bytes with the u64 fields after `name` overwritten:
    `fields` maps an offset from the name's end to a value."""
    buf = bytearray(data)
    at = data.rindex(name) + len(name)
    for offset, value in fields.items():
        struct.pack_into("<Q", buf, at + offset, value)
    return bytes(buf)


def _safetensors_claiming(data):
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [10**6, 10**6]
    header[key]["data_offsets"] = [0, 4 * TERA]
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data[8 + length :]


def _lora_h5_claiming(path):
    import h5py

    with h5py.File(path, "w") as f:
        f["lora/vars/rank"] = 2
        f.create_dataset(
            "lora/3/vars/lora_kernel_a",
            shape=(10**6, 10**6),
            dtype="float32",
            chunks=(1, 1024),
        )
        f["lora/3/vars/lora_kernel_b"] = np.ones((2, 4), "float32")


def write_cases(folder):
    """`{"warm": [(reader, path)], "cases": [(reader, path, claim)]}`:
    small valid files to warm up on, then the oversized files and the
    control (last), written into `folder`."""
    cases, warm = [], []

    def put(reader, name, data, claim=None):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        if claim is None:
            warm.append((reader, path))
        else:
            cases.append((reader, path, claim))

    weights = corpus.adapter_checkpoint()["adapter_weights.npz"]
    put("npz", "warm.npz", weights)
    put(
        "npz",
        "shape.npz",
        _npz_claiming(weights, f"({TERA},)"),
        "shape (10^12,) float32",
    )
    state = corpus.training_state()["state.npz"]
    put(
        "npz",
        "square.npz",
        _npz_claiming(state, "(1000000, 1000000)"),
        "shape (10^6, 10^6) float32",
    )
    gguf = corpus.gguf_model()["model.gguf"]
    put("gguf", "warm.gguf", gguf)
    put(
        "gguf",
        "dims.gguf",
        _gguf_with(gguf, b"token_embd.weight", {4: 8, 12: TERA // 8}),
        "tensor dims 8 x 1.25e11",
    )
    put(
        "gguf",
        "string.gguf",
        _gguf_with(gguf, b"general.architecture", {4: 2**62}),
        "string of 2^62 bytes",
    )
    put(
        "gguf",
        "array.gguf",
        _gguf_with(gguf, b"tokenizer.ggml.tokens", {8: 2**62}),
        "array of 2^62 strings",
    )
    tensors = corpus.peft_folder()["adapter_model.safetensors"]
    put("safetensors", "warm.safetensors", tensors)
    put("lora_h5", "warm.lora.h5", corpus.lora_h5()["a.lora.h5"])
    put(
        "safetensors",
        "shape.safetensors",
        _safetensors_claiming(tensors),
        "shape (10^6, 10^6) F32",
    )
    put(
        "safetensors",
        "header.safetensors",
        (2**63).to_bytes(8, "little") + tensors[8:],
        "header of 2^63 bytes",
    )
    _lora_h5_claiming(os.path.join(folder, "shape.lora.h5"))
    cases.append(
        (
            "lora_h5",
            os.path.join(folder, "shape.lora.h5"),
            "dataset (10^6, 10^6) float32",
        )
    )
    control = io.BytesIO()
    np.savez(control, big=np.ones(6 * 2**20, "float32"))
    put("npz", "control.npz", control.getvalue(), "control: a real 24 MB array")
    return {"warm": warm, "cases": cases}


def probe(spec, timeout=120):
    """The rows `memory_probe.py` reports for `spec` (`write_cases`), read
    in a fresh process that does not import TensorFlow."""
    result = subprocess.run(
        [sys.executable, PROBE, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"memory probe failed:\n{result.stderr}")
    return json.loads(result.stdout)
