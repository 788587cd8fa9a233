"""The fuzzed readers: for each, its seed files, how a case damages them,
and the lowest-level call that reads them (no Keras model built per case).

`TARGETS[name]` is a `Target`: `seeds()` gives `{relative path: bytes}`;
`mutate(m, seeds)` the files one case changes; `read(folder, changed)`
reads them; `refusals` the documented errors besides `CorruptFileError`
(a `ValueError` that names the file: an unsupported version, method or
option, or weights that do not fit the model).
"""

import dataclasses
import functools
import io
import json
import os
import re
import struct
import warnings
import zipfile

from fuzz import corpus


@dataclasses.dataclass
class Target:
    name: str
    seeds: object
    mutate: object
    read: object
    refusals: tuple = (ValueError,)


# --- JSON files -----------------------------------------------------------


def _json_case(m, seeds, name, drop=None):
    """`name` (a JSON file of `seeds`) changed structurally or damaged."""
    value = json.loads(seeds[name])
    if drop:
        value.pop(drop, None)
    if m.rng.random() < 0.85:
        return m.json_text(value).encode()
    return m.bytes(seeds[name])


# --- .npz files -----------------------------------------------------------

_NPY_SHAPES = ["(1000000000000,)", "(1000000, 1000000)", "(2**63,)", "()"]
_NPY_SHAPES += ["(0,)", "(3,)", "(-1, 2)", "(2, 2, 2, 2)", "'x'"]
_NPY_DESCR = ["'<f8'", "'<f2'", "'|O'", "'<i4'", "'>f4'", "'|V0'", "'<U4'"]
_NPY_DESCR += ["'|b1'", "'zz'", "[('a', '<f4')]", "'<c8'"]


def _npy_header_change(m, member):
    """An `.npy` member with one header field changed (the header keeps
    its length, as `np.save` pads it with spaces up to a newline)."""
    match = re.search(rb"\{.*?\}", member[:256])
    if match is None or b"\n" not in member[match.end() : 256]:
        return m.bytes(member)
    text = match.group().decode("latin1")
    field = m.rng.randrange(4)
    if field == 0:
        new = "'shape': " + m.rng.choice(_NPY_SHAPES)
        text = re.sub(r"'shape': \(.*?\)", new, text)
    elif field == 1:
        new = "'descr': " + m.rng.choice(_NPY_DESCR)
        text = re.sub(r"'descr': '.*?'", new, text)
    elif field == 2:
        text = text.replace("False", "True")
    else:
        text = text[:-1]
    start = match.start()
    room = member.index(b"\n", start) - start
    new = text.encode("latin1")[:room].ljust(room, b" ")
    return member[:start] + new + member[start + room :]


@functools.lru_cache(maxsize=8)
def _npz_members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(i.filename, archive.read(i)) for i in archive.infolist()]


def _npz_case(m, data):
    """The `.npz` bytes damaged, or rebuilt with one member (or its name)
    changed: a header field, damaged bytes, a repeated or foreign name."""
    rng = m.rng
    if rng.random() < 0.45:
        return m.bytes(data, focus=256)
    members = list(_npz_members(data))
    i = rng.randrange(len(members))
    name, member = members[i]
    kind = rng.randrange(6)
    if kind in (0, 1):
        members[i] = (name, _npy_header_change(m, member))
    elif kind == 2:
        members[i] = (name, m.bytes(member, focus=128))
    elif kind == 3:  # two members of one name
        members.append((name, members[rng.randrange(len(members))][1]))
    elif kind == 4:
        members[i] = (rng.choice(["x.txt", name[:-4], name + ".npy"]), member)
    else:
        del members[i]
    out = io.BytesIO()
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of repeated names
        with zipfile.ZipFile(out, "w", method) as archive:
            for name, member in members:
                archive.writestr(name, member)
    return out.getvalue()


# --- adapter checkpoints and training states ------------------------------


def _weights_case(m, seeds, config, weights, digest):
    """The JSON changed (most), or the weights with the recorded digest
    (caught by it) or without one (an older file: the zip and .npy
    headers are checked instead)."""
    roll = m.rng.random()
    if roll < 0.4:
        return {config: _json_case(m, seeds, config)}
    if roll < 0.5:
        return {weights: _npz_case(m, seeds[weights])}
    meta = json.loads(seeds[config])
    meta.pop(digest)
    return {
        config: json.dumps(meta).encode(),
        weights: _npz_case(m, seeds[weights]),
    }


def _read_adapter(folder, changed):
    from tf_adapters.checkpoint import read_checkpoint

    read_checkpoint(folder)


def _read_state(folder, changed):
    from tf_adapters.training.checkpointing import read_train_state

    read_train_state(folder)


# --- GGUF -----------------------------------------------------------------

_GGUF_KEYS = [
    b"general.architecture",
    b"llama.block_count",
    b"llama.embedding_length",
    b"llama.attention.head_count",
    b"tokenizer.ggml.tokens",
    b"tokenizer.ggml.merges",
    b"tokenizer.ggml.token_type",
    b"tokenizer.ggml.bos_token_id",
]
_GGUF_TENSORS = [b"token_embd.weight", b"blk.0.attn_q.weight"]
_GGUF_TENSORS += [b"blk.0.ffn_down.weight", b"output_norm.weight"]


@dataclasses.dataclass
class _GGUFFields:
    """Offsets of the header fields worth overwriting: counts, string
    lengths, value types, array counts, tensor dims, types and offsets."""

    ints: list
    header_end: int


def _gguf_fields(data):
    ints = [(8, 8), (16, 8)]  # tensor count, kv count
    for key in _GGUF_KEYS:
        at = data.index(key)
        ints.append((at - 8, 8))  # the key's length
        kind_at = at + len(key)
        ints.append((kind_at, 4))
        kind = struct.unpack_from("<I", data, kind_at)[0]
        if kind == 8:
            ints.append((kind_at + 4, 8))  # string length
        elif kind == 9:
            ints += [(kind_at + 4, 4), (kind_at + 8, 8)]  # item type, count
    end = 0
    for name in _GGUF_TENSORS:
        at = data.rindex(name) + len(name)
        n_dims = struct.unpack_from("<I", data, at)[0]
        ints.append((at, 4))
        ints += [(at + 4 + 8 * i, 8) for i in range(n_dims)]
        ints += [(at + 4 + 8 * n_dims, 4), (at + 8 + 8 * n_dims, 8)]
        end = max(end, at + 16 + 8 * n_dims)
    return _GGUFFields(ints, end)


def _gguf_case(m, seeds):
    data = seeds["model.gguf"]
    fields = _gguf_fields(data)
    if m.rng.random() < 0.45:
        at, width = m.rng.choice(fields.ints)
        value = m.rng.choice(
            [0, 1, 3, 5, 31, 33, 2**31, 2**32 - 1, 10**6, 10**12, 2**63]
            + [
                len(data),
                struct.unpack_from("<Q" if width == 8 else "<I", data, at)[0]
                + 1,
            ]
        )
        value &= (1 << (8 * width)) - 1
        buf = bytearray(data)
        buf[at : at + width] = value.to_bytes(width, "little")
        return {"model.gguf": bytes(buf)}
    return {"model.gguf": m.bytes(data, focus=fields.header_end)}


def _read_gguf(folder, changed):
    from tf_adapters.models.gguf.gguf_reader import read_llama_gguf

    read_llama_gguf(os.path.join(folder, "model.gguf"))


# --- safetensors ----------------------------------------------------------


def _safetensors_case(m, data):
    """The header changed structurally (its length kept right), the length
    field overwritten, or the bytes damaged."""
    roll = m.rng.random()
    length = int.from_bytes(data[:8], "little")
    if roll < 0.5:
        header = json.loads(data[8 : 8 + length])
        text = m.json_text(header).encode()
        return len(text).to_bytes(8, "little") + text + data[8 + length :]
    if roll < 0.6:
        value = m.rng.choice([0, 1, length - 1, length + 1, len(data), 2**63])
        return value.to_bytes(8, "little") + data[8:]
    return m.bytes(data, focus=8 + length)


def _peft_case(m, seeds):
    if m.rng.random() < 0.4:
        name = "adapter_config.json"
        return {name: _json_case(m, seeds, name)}
    name = "adapter_model.safetensors"
    return {name: _safetensors_case(m, seeds[name])}


def _read_peft(folder, changed):
    from tf_adapters.interop.peft_format import read_peft_adapter

    read_peft_adapter(folder, corpus.tiny_backbone())


def _hf_case(m, seeds):
    name = m.rng.choice(
        ["single/config.json", "single/model.safetensors"] * 2
        + [
            "sharded/model.safetensors.index.json",
            "sharded/model-00002-of-00002.safetensors",
        ]
    )
    if name.endswith(".json"):
        return {name: _json_case(m, seeds, name)}
    return {name: _safetensors_case(m, seeds[name])}


def _read_hf(folder, changed):
    from tf_adapters.models.hf_convert.reading import HF_DEFAULTS
    from tf_adapters.models.hf_convert.reading import Config
    from tf_adapters.models.hf_convert.reading import SafetensorsLoader
    from tf_adapters.models.hf_convert.reading import read_config_json

    layout = next(iter(changed)).split("/")[0]
    path = os.path.join(folder, layout)
    if layout == "single":
        config_path, raw = read_config_json(path)
        config = Config(raw, HF_DEFAULTS["opt"], config_path)
        for key in HF_DEFAULTS["opt"]:
            config[key]
    with SafetensorsLoader(path) as loader:
        for key, (shape, _) in corpus.HF_TENSORS.items():
            loader.get(key, shape, prefixed=False)
        loader.check_all_used()


# --- keras-hub .lora.h5 ---------------------------------------------------


def _lora_h5_case(m, seeds):
    return {"a.lora.h5": m.bytes(seeds["a.lora.h5"])}


def _read_lora_h5(folder, changed):
    from tf_adapters.interop.lora_h5 import read_lora_h5

    read_lora_h5(os.path.join(folder, "a.lora.h5"))


# --- options files --------------------------------------------------------


class OptionRefused(Exception):
    """`FinetuneConfig.from_dict` refused a value (its documented
    `ValueError` / `TypeError` naming the option)."""


def _options_case(m, seeds):
    name = m.rng.choice(["run.yaml", "run.json"])
    if name == "run.json":
        return {name: _json_case(m, seeds, name)}
    import yaml

    roll = m.rng.random()
    if roll < 0.5:
        value = m.json_value(dict(corpus.OPTIONS))
        text = yaml.safe_dump(value, sort_keys=False)
    elif roll < 0.6:
        text = seeds[name].decode() + "rank: 8\n"  # a key twice
    else:
        return {name: m.bytes(seeds[name])}
    return {name: text.encode()}


def _read_options(folder, changed):
    from tf_adapters import FinetuneConfig

    path = os.path.join(folder, next(iter(changed)))
    options = FinetuneConfig.from_file(path)
    try:
        FinetuneConfig.from_dict(options, path)
    except (ValueError, TypeError) as e:
        named = str(e) if path in str(e) else f"{path}: {e}"
        raise OptionRefused(named) from None


# --- data files -----------------------------------------------------------


def _data_case(m, seeds):
    name = m.rng.choice(["data.jsonl", "data.csv", "data.txt"])
    data = seeds[name]
    if name == "data.jsonl" and m.rng.random() < 0.5:
        lines = data.decode().splitlines()
        i = m.rng.randrange(len(lines))
        lines[i] = m.json_text(json.loads(lines[i]))
        return {name: "\n".join(lines).encode()}
    if name == "data.csv" and m.rng.random() < 0.3:
        at = m.offset(data)
        junk = m.rng.choice([b'"', b",", b"\r", b'""', b"\x00", b"\n,\n"])
        return {name: data[:at] + junk + data[at:]}
    return {name: m.bytes(data)}


def _read_data(folder, changed):
    from tf_adapters.data.files import read_file

    name = next(iter(changed))
    fields = ["text"] if name.endswith(".txt") else ["text", "label"]
    read_file(os.path.join(folder, name), fields)


TARGETS = {
    target.name: target
    for target in [
        Target(
            "adapter checkpoint",
            corpus.adapter_checkpoint,
            lambda m, s: _weights_case(
                m,
                s,
                "adapter_config.json",
                "adapter_weights.npz",
                "weights_sha256",
            ),
            _read_adapter,
        ),
        Target(
            "training state",
            corpus.training_state,
            lambda m, s: _weights_case(
                m, s, "state.json", "state.npz", "sha256"
            ),
            _read_state,
        ),
        Target(
            "keras-hub .lora.h5", corpus.lora_h5, _lora_h5_case, _read_lora_h5
        ),
        Target("PEFT folder", corpus.peft_folder, _peft_case, _read_peft),
        Target(
            "HF safetensors",
            corpus.hf_checkpoint,
            _hf_case,
            _read_hf,
            (ValueError, FileNotFoundError),
        ),
        Target("GGUF", corpus.gguf_model, _gguf_case, _read_gguf),
        Target(
            "YAML/JSON config",
            corpus.options_files,
            _options_case,
            _read_options,
            (OptionRefused,),
        ),
        Target(
            "JSONL/CSV/TXT data", corpus.data_files, _data_case, _read_data, ()
        ),
    ]
}
