"""Reading a Hugging Face checkpoint folder for `hf_convert`.

`config.json` with the defaults of the `transformers` config classes and
the refusals that name the file (`Config`); the safetensors tensors of a
single file or of shards, float16 and bfloat16 widened to float32
(`SafetensorsLoader`); and the helpers the family converters share to port
`nn.Linear` weights, biases and layer norms into keras-hub variables, found
by their `variable.path`.
"""

import math
import os
import re

import numpy as np

from tf_adapters.core import safetensors_file
from tf_adapters.core.integrity import corrupt
from tf_adapters.core.integrity import load_json
from tf_adapters.core.safetensors_file import read_tensor
from tf_adapters.models.weights import assign  # noqa: F401 (re-exported)

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

# Defaults of the `transformers` config classes (5.x) for the keys read
# here: what `transformers` uses when `config.json` leaves a key out.
HF_DEFAULTS = {
    "opt": {
        "vocab_size": 50272,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "ffn_dim": 3072,
        "max_position_embeddings": 2048,
        "do_layer_norm_before": True,
        "_remove_final_layer_norm": False,
        "word_embed_proj_dim": None,
        "dropout": 0.1,
        "num_attention_heads": 12,
        "activation_function": "relu",
        "enable_bias": True,
        "layer_norm_elementwise_affine": True,
        "tie_word_embeddings": True,
    },
    "gpt_neox": {
        "vocab_size": 50432,
        "hidden_size": 6144,
        "num_hidden_layers": 44,
        "num_attention_heads": 64,
        "intermediate_size": 24576,
        "hidden_act": "gelu",
        "hidden_dropout": 0.0,
        "max_position_embeddings": 2048,
        "layer_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "use_parallel_residual": True,
        "attention_bias": True,
        "rotary_pct": 0.25,
        "rotary_emb_base": 10000.0,
    },
    "phi3": {
        "vocab_size": 32064,
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": None,
        "resid_pdrop": 0.0,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "original_max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "sliding_window": None,
        "rope_theta": 10000.0,
        "partial_rotary_factor": 1.0,
    },
}

# Non-parameter buffers some (older) checkpoints store: causal-mask and
# rotary tables that `transformers` recomputes.
_BUFFERS = re.compile(r"(\.attention\.(masked_)?bias|\.inv_freq)$")


_ADVICE = "Download or copy the checkpoint again"
_KIND_NAMES = {
    bool: "true/false",
    int: "an integer",
    float: "a number",
    str: "a string",
}


def read_config_json(folder):
    """`(path, parsed JSON object)` of the folder's `config.json`."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{config_path} does not exist.")
    raw = load_json(config_path, "Hugging Face model config", _ADVICE)
    return config_path, raw


class Config:
    """`config.json` with the `transformers` defaults, and refusals that
    name the file."""

    def __init__(self, raw, defaults, path):
        self.raw = raw
        self.defaults = defaults
        self.path = path

    def __getitem__(self, key):
        if key in self.raw and self.raw[key] is not None:
            return self._checked(key, self.raw[key])
        return self.defaults.get(key)

    def _checked(self, key, value):
        """`value` if it has the type of the `transformers` default (ints
        >= 1 where the default is, numbers finite and >= 0)."""
        default = self.defaults.get(key)
        if default is None or value is default:
            return value
        kind = type(default)
        ok = isinstance(value, kind) and isinstance(value, bool) == (
            kind is bool
        )
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and kind in (int, float):
            ok = math.isfinite(value) and value >= (
                1 if kind is int and default >= 1 else 0
            )
        if not ok:
            raise corrupt(
                self.path,
                "Hugging Face model config",
                f"has {key}={value!r}, where {_KIND_NAMES[kind]} like "
                f"{default!r} belongs",
                _ADVICE,
            )
        return value

    def refuse(self, option, why):
        raise ValueError(
            f"{self.path}: `{option}` {why}; keras-hub's backbone computes "
            "this differently, so converting it would give another model."
        )

    def require(self, option, expected):
        value = self[option]
        if value != expected:
            self.refuse(
                f"{option}={value!r}",
                f"is not supported (only {expected!r} is)",
            )
        return value

    def rope(self, theta_keys, partial_keys, partial_default):
        """RoPE parameters from both `config.json` layouts: `transformers`
        5's `rope_parameters`, and the older `rope_scaling` plus top-level
        `rope_theta` / `rotary_emb_base` / `rotary_pct`."""
        rope = dict(self.raw.get("rope_scaling") or {})
        rope.update(self.raw.get("rope_parameters") or {})
        rope_type = rope.get("rope_type", rope.get("type")) or "default"
        theta = rope.get("rope_theta")
        for key in theta_keys:
            if theta is None:
                theta = self[key]
        partial = rope.get("partial_rotary_factor")
        for key in partial_keys:
            if partial is None:
                partial = self[key]
        if partial is None:
            partial = partial_default
        return rope_type, theta, partial, rope


class SafetensorsLoader:
    """The checkpoint's tensors by name, read one at a time as float32
    (bfloat16 widened exactly); every file's header is checked against its
    size when the loader opens (`tf_adapters.core.safetensors_file`).
    Remembers which tensors were used."""

    def __init__(self, folder):
        single = os.path.join(folder, SINGLE_FILE)
        index = os.path.join(folder, INDEX_FILE)
        if os.path.isfile(single):
            self.file_of = None
            files = [SINGLE_FILE]
        elif os.path.isfile(index):
            self.file_of = _weight_map(index)
            files = sorted(set(self.file_of.values()))
            for name in files:
                if not os.path.isfile(os.path.join(folder, name)):
                    raise FileNotFoundError(
                        f"{index} places weights in {name}, which is not in "
                        f"{folder}; download the missing shard."
                    )
        else:
            raise FileNotFoundError(
                f"{folder} has neither {SINGLE_FILE} nor {INDEX_FILE}."
            )
        self.folder = folder
        self.headers = {
            name: safetensors_file.read_header(
                os.path.join(folder, name), "Hugging Face weights", _ADVICE
            )
            for name in files
        }
        if self.file_of is None:
            self.file_of = dict.fromkeys(
                self.headers[SINGLE_FILE].tensors, SINGLE_FILE
            )
        for key, name in self.file_of.items():
            if key not in self.headers[name].tensors:
                raise corrupt(
                    index,
                    "Hugging Face weight map",
                    f"places `{key}` in {name}, which does not hold it",
                    _ADVICE,
                )
        self.used = set()
        self.prefix = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def file(self, key):
        return os.path.join(self.folder, self.file_of[key])

    def find_prefix(self, suffix):
        """Sets the prefix of the backbone's keys (e.g. `model.decoder.` of
        a causal LM or `decoder.` of a bare `OPTModel`) from the key that
        ends with `suffix`."""
        keys = [k for k in self.file_of if k.endswith(suffix)]
        keys = [k for k in keys if k == suffix or k.endswith("." + suffix)]
        if not keys:
            raise ValueError(
                f"{self.folder}: no weight named `{suffix}` (or ending with "
                f"`.{suffix}`); is this a checkpoint of this model type?"
            )
        self.prefix = min(keys, key=len)[: -len(suffix)]

    def has(self, key, prefixed=True):
        return (self.prefix + key if prefixed else key) in self.file_of

    def get(self, key, shape, prefixed=True):
        """The tensor `key` as float32; a `ValueError` naming it and both
        shapes unless its shape is `shape`."""
        key = self.prefix + key if prefixed else key
        if key not in self.file_of:
            raise ValueError(
                f"{self.folder}: the checkpoint has no weight `{key}`."
            )
        header = self.headers[self.file_of[key]]
        found = header.tensors[key].shape
        if found != tuple(shape):
            raise ValueError(
                f"{self.file(key)}: weight `{key}` has shape {found}; the "
                f"config implies {tuple(shape)}."
            )
        value = read_tensor(header, key).astype("float32", copy=False)
        self.used.add(key)
        return value

    def mark_used(self, key, prefixed=True):
        self.used.add(self.prefix + key if prefixed else key)

    def check_all_used(self):
        left = sorted(
            k
            for k in self.file_of
            if k not in self.used and not _BUFFERS.search(k)
        )
        if left:
            shown = ", ".join(f"`{k}`" for k in left[:8])
            more = f" and {len(left) - 8} more" if len(left) > 8 else ""
            raise ValueError(
                f"{self.folder}: the keras-hub backbone has no place for "
                f"{shown}{more} (a bias or layer it does not have?)."
            )


def _weight_map(index):
    """`{tensor name: shard file}` of a sharded checkpoint's index; shard
    names must be plain file names in the folder."""
    what = "Hugging Face weight map"
    weight_map = load_json(index, what, _ADVICE).get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(v, str) and v and os.path.basename(v) == v and v != ".."
        for v in weight_map.values()
    ):
        raise corrupt(
            index,
            what,
            "lacks a `weight_map` of tensor names to shard files in its folder",
            _ADVICE,
        )
    return weight_map


def variables_by_path(backbone):
    return {v.path: v for v in backbone.weights}


def port_tied_head(loader, config, embeddings, head_keys):
    """keras-hub ties this backbone's head to its token embedding: accept a
    checkpoint whose head is tied, or stored equal to the embedding."""
    present = [k for k in head_keys if loader.has(k, prefixed=False)]
    if config["tie_word_embeddings"]:
        for key in present:
            loader.mark_used(key, prefixed=False)
        return
    if present:
        head = loader.get(present[0], embeddings.shape, prefixed=False)
        if np.array_equal(head, embeddings):
            return
    config.refuse(
        "tie_word_embeddings=False",
        "gives the model an output head of its own (`"
        + " / ".join(head_keys)
        + "`), but the keras-hub backbone ties it to the token embedding",
    )


def linear(loader, key, in_dim, out_shape):
    """A `nn.Linear` weight `(out, in)` as a keras kernel `(in, *out)`."""
    out = int(np.prod(out_shape))
    return loader.get(key, (out, in_dim)).T.reshape((in_dim, *out_shape))


def bias(loader, key, shape, present=True):
    if not present:
        return np.zeros(shape, "float32")
    return loader.get(key, (int(np.prod(shape)),)).reshape(shape)


def layer_norm(loader, variables, keras_name, hf_name, dim, affine=True):
    gamma = loader.get(f"{hf_name}.weight", (dim,)) if affine else 1.0
    beta = loader.get(f"{hf_name}.bias", (dim,)) if affine else 0.0
    assign(variables[f"{keras_name}/gamma"], np.full((dim,), gamma))
    assign(variables[f"{keras_name}/beta"], np.full((dim,), beta))


def check_heads(config, hidden, heads):
    head_dim = config.raw.get("head_dim")
    if hidden % heads:
        config.refuse(
            f"num_attention_heads={heads}",
            f"does not divide hidden_size={hidden}",
        )
    if head_dim is not None and head_dim != hidden // heads:
        config.refuse(
            f"head_dim={head_dim}",
            f"differs from hidden_size // num_attention_heads = "
            f"{hidden // heads}",
        )
