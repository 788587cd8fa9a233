"""Reading a Hugging Face checkpoint folder for `hf_convert`.

`config.json` with the defaults of the `transformers` config classes and
the refusals that name the file (`Config`); the safetensors tensors of a
single file or of shards, float16 and bfloat16 widened to float32
(`SafetensorsLoader`); and the helpers the family converters share to port
`nn.Linear` weights, biases and layer norms into keras-hub variables, found
by their `variable.path`.
"""

import json
import os
import re

import numpy as np
from safetensors import safe_open

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


def read_config_json(folder):
    """`(path, parsed JSON)` of the folder's `config.json`."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{config_path} does not exist.")
    with open(config_path, encoding="utf-8") as f:
        raw = json.load(f)
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
            return self.raw[key]
        return self.defaults.get(key)

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


def _bf16_to_float32(raw):
    return (raw.astype(np.uint32) << 16).view(np.float32)


class SafetensorsLoader:
    """The checkpoint's tensors by name, read one at a time as float32 with
    `safetensors.safe_open(..., framework="np")`; remembers which were
    used."""

    def __init__(self, folder):
        single = os.path.join(folder, SINGLE_FILE)
        index = os.path.join(folder, INDEX_FILE)
        if os.path.isfile(single):
            files = [SINGLE_FILE]
            self.file_of = None
        elif os.path.isfile(index):
            with open(index, encoding="utf-8") as f:
                self.file_of = json.load(f)["weight_map"]
            files = sorted(set(self.file_of.values()))
        else:
            raise FileNotFoundError(
                f"{folder} has neither {SINGLE_FILE} nor {INDEX_FILE}."
            )
        self.folder = folder
        self.handles = {}
        for name in files:
            path = os.path.join(folder, name)
            try:
                self.handles[name] = safe_open(path, framework="np")
            except Exception as e:  # safetensors raises SafetensorError
                raise ValueError(
                    f"{path} is not a readable safetensors file ({e}); it "
                    "may be truncated or corrupt."
                ) from None
        if self.file_of is None:
            self.file_of = {
                key: SINGLE_FILE for key in self.handles[SINGLE_FILE].keys()
            }
        self.used = set()
        self.prefix = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handles.clear()
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
        handle = self.handles[self.file_of[key]]
        tensor_slice = handle.get_slice(key)
        found = tuple(tensor_slice.get_shape())
        if found != tuple(shape):
            raise ValueError(
                f"{self.file(key)}: weight `{key}` has shape {found}; the "
                f"config implies {tuple(shape)}."
            )
        if tensor_slice.get_dtype() == "BF16":
            value = self._read_bf16(key, found)
        else:
            value = np.asarray(handle.get_tensor(key), dtype="float32")
        self.used.add(key)
        return value

    def _read_bf16(self, key, shape):
        # numpy has no bfloat16: read the raw 16-bit words at the offsets
        # the safetensors header gives and widen them (exact).
        path = self.file(key)
        with open(path, "rb") as f:
            header_size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_size))
        begin, end = header[key]["data_offsets"]
        raw = np.fromfile(
            path,
            dtype="<u2",
            count=(end - begin) // 2,
            offset=8 + header_size + begin,
        )
        return _bf16_to_float32(raw).reshape(shape)

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
