"""Hugging Face OPT, GPT-NeoX and Phi-3 checkpoints → keras-hub backbones.

keras-hub 0.32 converts Hugging Face checkpoints of Llama, Mistral, Gemma,
Qwen, GPT-2 and others, but not of OPT, GPT-NeoX or Phi-3, although it has
backbones for them. This module converts the backbone weights of those three
families from a folder with `config.json` and `model.safetensors` (or a
sharded `model.safetensors.index.json`), in the style of keras-hub's own
converters (`keras_hub/src/utils/transformers/convert_*.py`): one function
maps the config, one ports the weights.

Options that the keras-hub backbone computes differently are refused with a
`ValueError` naming the option and the file, rather than converted into a
model that does not match the checkpoint: OPT with post-norm
(`do_layer_norm_before=False`), a removed final norm, `word_embed_proj_dim !=
hidden_size`, another activation than ReLU or an untied head; GPT-NeoX with
sequential residuals, an activation other than the tanh GELU, RoPE scaling or
an untied head; Phi-3 with another activation than SiLU, partial rotary
embeddings, a sliding window shorter than the context, RoPE scaling other
than LongRoPE, or a LongRoPE attention factor keras-hub computes differently.
Weights the checkpoint has and the backbone has no place for (a bias, say)
are refused too; biases or norm parameters the checkpoint leaves out
(`enable_bias=False`, `attention_bias=False`,
`layer_norm_elementwise_affine=False`) are their neutral values.

Dropout rates are mapped where keras-hub has one rate, and only matter in
training. Everything else is assigned through public APIs: variables are
found by their `variable.path`.
"""

import json
import math
import os
import re

import keras_hub
import numpy as np
from safetensors import safe_open

MODEL_TYPES = ("opt", "gpt_neox", "phi3")

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

# The tanh approximation of GELU that keras-hub's GPT-NeoX uses, under its
# `transformers` names. Plain "gelu" (the erf form, used by Pythia) is not
# it: about 1e-3 apart per activation.
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")

# Non-parameter buffers some (older) checkpoints store: causal-mask and
# rotary tables that `transformers` recomputes.
_BUFFERS = re.compile(r"(\.attention\.(masked_)?bias|\.inv_freq)$")


def convert_hf_backbone(folder, dtype=None):
    """Builds a keras-hub backbone from a Hugging Face OPT, GPT-NeoX or
    Phi-3 checkpoint folder.

    Only the backbone is converted (the head is checked: keras-hub's OPT and
    GPT-NeoX tie it to the token embedding, Phi-3 keeps it as the token
    embedding's `reverse_embeddings`). Tensors stored as float16 or bfloat16
    are widened to float32 before they are assigned.

    Args:
        folder: str. A folder with `config.json` and `model.safetensors`, or
            `model.safetensors.index.json` and its shards.
        dtype: string or `keras.mixed_precision.DTypePolicy`. The backbone's
            dtype; `None` uses Keras's default (float32).

    Returns:
        A built `keras_hub.models.OPTBackbone`, `GPTNeoXBackbone` or
        `Phi3Backbone` holding the checkpoint's weights.

    Raises:
        ValueError: the model type is not one of `MODEL_TYPES`, the config
            sets an option the keras-hub backbone computes differently, a
            weight is missing, has an unexpected shape or has no place in
            the backbone.

    Example:

    >>> import json, os, tempfile
    >>> import numpy as np
    >>> from safetensors.numpy import save_file
    >>> folder = tempfile.mkdtemp()
    >>> config = {
    ...     "model_type": "phi3", "vocab_size": 16, "hidden_size": 8,
    ...     "intermediate_size": 12, "num_hidden_layers": 1,
    ...     "num_attention_heads": 2, "num_key_value_heads": 1,
    ...     "max_position_embeddings": 32, "tie_word_embeddings": True,
    ... }
    >>> with open(os.path.join(folder, "config.json"), "w") as f:
    ...     json.dump(config, f)
    >>> shapes = {
    ...     "model.embed_tokens.weight": (16, 8),
    ...     "model.norm.weight": (8,),
    ...     "model.layers.0.input_layernorm.weight": (8,),
    ...     "model.layers.0.post_attention_layernorm.weight": (8,),
    ...     "model.layers.0.self_attn.qkv_proj.weight": (16, 8),
    ...     "model.layers.0.self_attn.o_proj.weight": (8, 8),
    ...     "model.layers.0.mlp.gate_up_proj.weight": (24, 8),
    ...     "model.layers.0.mlp.down_proj.weight": (8, 12),
    ... }
    >>> rng = np.random.default_rng(0)
    >>> tensors = {
    ...     k: rng.normal(size=s).astype("float32") for k, s in shapes.items()
    ... }
    >>> save_file(tensors, os.path.join(folder, "model.safetensors"))
    >>> backbone = convert_hf_backbone(folder)
    >>> type(backbone).__name__, backbone.num_key_value_heads
    ('Phi3Backbone', 1)
    >>> variables = {v.path: v for v in backbone.weights}
    >>> kernel = variables["transformer_layer_0/attention/key/kernel"]
    >>> tuple(kernel.shape)
    (8, 1, 4)
    >>> bool(np.array_equal(
    ...     kernel.numpy().reshape(8, 4),
    ...     tensors["model.layers.0.self_attn.qkv_proj.weight"][8:12].T,
    ... ))
    True
    """
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{config_path} does not exist.")
    with open(config_path, encoding="utf-8") as f:
        raw = json.load(f)
    model_type = raw.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"{config_path}: model type {model_type!r} is not one of "
            f"{MODEL_TYPES} (keras-hub's own loader, "
            "`keras_hub.models.Backbone.from_preset`, handles many others)."
        )
    config = _Config(raw, HF_DEFAULTS[model_type], config_path)
    backbone_cls, convert_config, convert_weights = _CONVERTERS[model_type]
    backbone_config = convert_config(config)
    with _SafetensorsLoader(folder) as loader:
        backbone = backbone_cls(**backbone_config, dtype=dtype)
        convert_weights(backbone, loader, config)
        loader.check_all_used()
    return backbone


# === Config and weights access ===


class _Config:
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


class _SafetensorsLoader:
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
            self.handles[name] = safe_open(
                os.path.join(folder, name), framework="np"
            )
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


def _variables_by_path(backbone):
    return {v.path: v for v in backbone.weights}


def _assign(variable, value):
    value = np.asarray(value, dtype="float32")
    if tuple(variable.shape) != value.shape:
        raise ValueError(
            f"Variable {variable.path} has shape {tuple(variable.shape)}; "
            f"the converted weight has shape {value.shape}."
        )
    variable.assign(value)


def _port_tied_head(loader, config, embeddings, head_keys):
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


def _linear(loader, key, in_dim, out_shape):
    """A `nn.Linear` weight `(out, in)` as a keras kernel `(in, *out)`."""
    out = int(np.prod(out_shape))
    return loader.get(key, (out, in_dim)).T.reshape((in_dim, *out_shape))


def _bias(loader, key, shape, present=True):
    if not present:
        return np.zeros(shape, "float32")
    return loader.get(key, (int(np.prod(shape)),)).reshape(shape)


def _layer_norm(loader, variables, keras_name, hf_name, dim, affine=True):
    gamma = loader.get(f"{hf_name}.weight", (dim,)) if affine else 1.0
    beta = loader.get(f"{hf_name}.bias", (dim,)) if affine else 0.0
    _assign(variables[f"{keras_name}/gamma"], np.full((dim,), gamma))
    _assign(variables[f"{keras_name}/beta"], np.full((dim,), beta))


# === OPT ===


def _convert_opt_config(config):
    """keras-hub `OPTBackbone` arguments from an OPT `config.json`."""
    hidden = config["hidden_size"]
    config.require("do_layer_norm_before", True)
    config.require("_remove_final_layer_norm", False)
    config.require("activation_function", "relu")
    proj = config["word_embed_proj_dim"]
    if proj is not None and proj != hidden:
        config.refuse(
            f"word_embed_proj_dim={proj}",
            f"differs from hidden_size={hidden} (projected embeddings)",
        )
    _check_heads(config, hidden, config["num_attention_heads"])
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": hidden,
        "intermediate_dim": config["ffn_dim"],
        "dropout": config["dropout"],
        "max_sequence_length": config["max_position_embeddings"],
    }


def _convert_opt_weights(backbone, loader, config):
    """Ports OPT weights (`model.decoder.*`) into an `OPTBackbone`."""
    # keras-hub's OPT fixes the epsilon of its norms at `nn.LayerNorm`'s.
    if backbone.layer_norm.epsilon != 1e-5:
        raise ValueError("keras-hub's OPTBackbone no longer uses eps=1e-5.")
    loader.find_prefix("embed_tokens.weight")
    variables = _variables_by_path(backbone)
    d, heads = backbone.hidden_dim, backbone.num_heads
    head_dim, ffn = d // heads, backbone.intermediate_dim
    bias = config["enable_bias"]
    affine = config["layer_norm_elementwise_affine"]

    embeddings = loader.get(
        "embed_tokens.weight", (backbone.vocabulary_size, d)
    )
    _assign(backbone.token_embedding.embeddings, embeddings)
    # `OPTLearnedPositionalEmbedding` looks position p up at row p + 2.
    length = backbone.max_sequence_length
    positions = loader.get("embed_positions.weight", (length + 2, d))
    _assign(
        variables["embeddings/position_embedding/embeddings"], positions[2:]
    )
    _port_tied_head(loader, config, embeddings, ["lm_head.weight"])

    for i in range(backbone.num_layers):
        hf, keras = f"layers.{i}", f"transformer_layer_{i}"
        for proj, name in [("q", "query"), ("k", "key"), ("v", "value")]:
            _assign(
                variables[f"{keras}/self_attention/{name}/kernel"],
                _linear(
                    loader,
                    f"{hf}.self_attn.{proj}_proj.weight",
                    d,
                    (heads, head_dim),
                ),
            )
            _assign(
                variables[f"{keras}/self_attention/{name}/bias"],
                _bias(
                    loader,
                    f"{hf}.self_attn.{proj}_proj.bias",
                    (heads, head_dim),
                    bias,
                ),
            )
        out = loader.get(f"{hf}.self_attn.out_proj.weight", (d, d))
        _assign(
            variables[f"{keras}/self_attention/attention_output/kernel"],
            out.T.reshape(heads, head_dim, d),
        )
        _assign(
            variables[f"{keras}/self_attention/attention_output/bias"],
            _bias(loader, f"{hf}.self_attn.out_proj.bias", (d,), bias),
        )
        _layer_norm(
            loader,
            variables,
            f"{keras}/self_attention_layer_norm",
            f"{hf}.self_attn_layer_norm",
            d,
            affine,
        )
        _layer_norm(
            loader,
            variables,
            f"{keras}/feedforward_layer_norm",
            f"{hf}.final_layer_norm",
            d,
            affine,
        )
        for fc, name, dims in [
            ("fc1", "feedforward_intermediate_dense", (d, ffn)),
            ("fc2", "feedforward_output_dense", (ffn, d)),
        ]:
            _assign(
                variables[f"{keras}/{name}/kernel"],
                _linear(loader, f"{hf}.{fc}.weight", dims[0], (dims[1],)),
            )
            _assign(
                variables[f"{keras}/{name}/bias"],
                _bias(loader, f"{hf}.{fc}.bias", (dims[1],), bias),
            )
    _layer_norm(loader, variables, "layer_norm", "final_layer_norm", d, affine)
    return backbone


# === GPT-NeoX ===


def _convert_gpt_neox_config(config):
    """keras-hub `GPTNeoXBackbone` arguments from a GPT-NeoX
    `config.json`."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    config.require("use_parallel_residual", True)
    act = config["hidden_act"]
    if act not in TANH_GELU:
        config.refuse(
            f"hidden_act={act!r}",
            "is not the tanh approximation of GELU that keras-hub's "
            f"GPT-NeoX uses ({' / '.join(TANH_GELU)})",
        )
    _check_heads(config, hidden, heads)
    rope_type, theta, partial, _ = config.rope(
        ("rope_theta", "rotary_emb_base"), ("rotary_pct",), 0.25
    )
    if rope_type != "default":
        config.refuse(f"rope_type={rope_type!r}", "(RoPE scaling) is set")
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": heads,
        "hidden_dim": hidden,
        "intermediate_dim": config["intermediate_size"],
        "dropout": config["hidden_dropout"],
        "rotary_percentage": partial,
        "rotary_max_wavelength": theta,
        "layer_norm_epsilon": config["layer_norm_eps"],
        "max_sequence_length": config["max_position_embeddings"],
    }


def _convert_gpt_neox_weights(backbone, loader, config):
    """Ports GPT-NeoX weights (`gpt_neox.*`) into a `GPTNeoXBackbone`."""
    loader.find_prefix("embed_in.weight")
    variables = _variables_by_path(backbone)
    d, heads = backbone.hidden_dim, backbone.num_heads
    head_dim, ffn = d // heads, backbone.intermediate_dim
    bias = config["attention_bias"]

    embeddings = loader.get("embed_in.weight", (backbone.vocabulary_size, d))
    _assign(backbone.token_embedding.embeddings, embeddings)
    _port_tied_head(
        loader, config, embeddings, ["embed_out.weight", "lm_head.weight"]
    )

    for i in range(backbone.num_layers):
        hf, keras = f"layers.{i}", f"transformer_layer_{i}"
        attention = f"{keras}/self_attention"
        # The fused projection's outputs are laid out (heads, 3, head_dim):
        # per head its query, key and value, as keras-hub's kernel is.
        _assign(
            variables[f"{attention}/query_key_value/kernel"],
            _linear(
                loader,
                f"{hf}.attention.query_key_value.weight",
                d,
                (heads, 3 * head_dim),
            ),
        )
        _assign(
            variables[f"{attention}/query_key_value/bias"],
            _bias(
                loader,
                f"{hf}.attention.query_key_value.bias",
                (heads, 3 * head_dim),
                bias,
            ),
        )
        _assign(
            variables[f"{attention}/attention_output/kernel"],
            _linear(loader, f"{hf}.attention.dense.weight", d, (d,)),
        )
        _assign(
            variables[f"{attention}/attention_output/bias"],
            _bias(loader, f"{hf}.attention.dense.bias", (d,), bias),
        )
        _layer_norm(
            loader,
            variables,
            f"{keras}/self_attention_layer_norm",
            f"{hf}.input_layernorm",
            d,
        )
        _layer_norm(
            loader,
            variables,
            f"{keras}/feedforward_layer_norm",
            f"{hf}.post_attention_layernorm",
            d,
        )
        for fc, name, dims in [
            ("dense_h_to_4h", "feedforward_intermediate_dense", (d, ffn)),
            ("dense_4h_to_h", "feedforward_output_dense", (ffn, d)),
        ]:
            _assign(
                variables[f"{keras}/{name}/kernel"],
                _linear(loader, f"{hf}.mlp.{fc}.weight", dims[0], (dims[1],)),
            )
            _assign(
                variables[f"{keras}/{name}/bias"],
                _bias(loader, f"{hf}.mlp.{fc}.bias", (dims[1],)),
            )
    _layer_norm(loader, variables, "layer_norm", "final_layer_norm", d)
    return backbone


# === Phi-3 ===

_LONGROPE = ("longrope", "su", "yarn")  # `transformers` reads all as LongRoPE


def _convert_phi3_config(config):
    """keras-hub `Phi3Backbone` arguments from a Phi-3 `config.json`."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config["num_key_value_heads"] or heads
    config.require("hidden_act", "silu")
    _check_heads(config, hidden, heads)
    if heads % kv_heads:
        config.refuse(
            f"num_key_value_heads={kv_heads}",
            f"does not divide num_attention_heads={heads}",
        )
    max_length = config["max_position_embeddings"]
    window = config["sliding_window"]
    if window is not None and window < max_length:
        config.refuse(
            f"sliding_window={window}",
            f"is shorter than max_position_embeddings={max_length} (sliding "
            "window attention, which keras-hub's Phi-3 does not have)",
        )
    rope_type, theta, partial, rope = config.rope(
        ("rope_theta",), ("partial_rotary_factor",), 1.0
    )
    if partial != 1.0:
        config.refuse(
            f"partial_rotary_factor={partial}",
            "is set (partial rotary embeddings)",
        )
    original = config["original_max_position_embeddings"]
    backbone_config = {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "hidden_dim": hidden,
        "intermediate_dim": config["intermediate_size"],
        "num_query_heads": heads,
        "num_key_value_heads": kv_heads,
        "layer_norm_epsilon": config["rms_norm_eps"],
        "dropout": config["resid_pdrop"],
        "max_sequence_length": max_length,
        "pretraining_sequence_length": original,
        "rope_max_wavelength": theta,
    }
    if rope_type == "default":
        return backbone_config
    if rope_type not in _LONGROPE:
        config.refuse(
            f"rope_type={rope_type!r}",
            "is not supported (keras-hub's Phi-3 has LongRoPE, `su`, only)",
        )
    # keras-hub scales cos/sin by sqrt(1 + log(s) / log(original)) with
    # s = max_position_embeddings / original; `transformers` lets
    # `factor` or `attention_factor` override s or the result.
    ratio = max_length / original
    keras_factor = (
        math.sqrt(1 + math.log(ratio) / math.log(original))
        if ratio > 1
        else 1.0
    )
    factor = rope.get("factor") or ratio
    hf_factor = rope.get("attention_factor")
    if hf_factor is None:
        hf_factor = (
            math.sqrt(1 + math.log(factor) / math.log(original))
            if factor > 1
            else 1.0
        )
    if not math.isclose(hf_factor, keras_factor, rel_tol=1e-6):
        config.refuse(
            f"rope_parameters={rope!r}",
            f"gives a LongRoPE attention factor of {hf_factor:.6g}; "
            f"keras-hub's is {keras_factor:.6g}",
        )
    backbone_config.update(
        rope_scaling_type="su",
        rope_scaling_short_factor=list(rope["short_factor"]),
        rope_scaling_long_factor=list(rope["long_factor"]),
    )
    return backbone_config


def _convert_phi3_weights(backbone, loader, config):
    """Ports Phi-3 weights (`model.*`) into a `Phi3Backbone`."""
    loader.find_prefix("embed_tokens.weight")
    variables = _variables_by_path(backbone)
    d, heads = backbone.hidden_dim, backbone.num_query_heads
    kv_heads, ffn = backbone.num_key_value_heads, backbone.intermediate_dim
    head_dim = d // heads

    embeddings = loader.get(
        "embed_tokens.weight", (backbone.vocabulary_size, d)
    )
    _assign(backbone.token_embedding.embeddings, embeddings)
    if config["tie_word_embeddings"]:
        if loader.has("lm_head.weight", prefixed=False):
            loader.mark_used("lm_head.weight", prefixed=False)
        head = embeddings
    else:
        head = loader.get("lm_head.weight", embeddings.shape, prefixed=False)
    _assign(backbone.token_embedding.reverse_embeddings, head.T)

    q_size, kv_size = heads * head_dim, kv_heads * head_dim
    for i in range(backbone.num_layers):
        hf, keras = f"layers.{i}", f"transformer_layer_{i}"
        # The fused projection's rows: all queries, then keys, then values.
        qkv = loader.get(
            f"{hf}.self_attn.qkv_proj.weight", (q_size + 2 * kv_size, d)
        )
        for name, rows, n in [
            ("query", qkv[:q_size], heads),
            ("key", qkv[q_size : q_size + kv_size], kv_heads),
            ("value", qkv[q_size + kv_size :], kv_heads),
        ]:
            _assign(
                variables[f"{keras}/attention/{name}/kernel"],
                rows.T.reshape(d, n, head_dim),
            )
        out = loader.get(f"{hf}.self_attn.o_proj.weight", (d, q_size))
        _assign(
            variables[f"{keras}/attention/attention_output/kernel"],
            out.T.reshape(heads, head_dim, d),
        )
        # The fused MLP input's rows: the gate, then the up projection.
        gate_up = loader.get(f"{hf}.mlp.gate_up_proj.weight", (2 * ffn, d))
        _assign(
            variables[f"{keras}/feedforward_gate_dense/kernel"],
            gate_up[:ffn].T,
        )
        _assign(
            variables[f"{keras}/feedforward_intermediate_dense/kernel"],
            gate_up[ffn:].T,
        )
        _assign(
            variables[f"{keras}/feedforward_output_dense/kernel"],
            _linear(loader, f"{hf}.mlp.down_proj.weight", ffn, (d,)),
        )
        for hf_norm, keras_norm in [
            ("input_layernorm", "pre_attention_layernorm"),
            ("post_attention_layernorm", "post_attention_layernorm"),
        ]:
            _assign(
                variables[f"{keras}/{keras_norm}/scale"],
                loader.get(f"{hf}.{hf_norm}.weight", (d,)),
            )
    _assign(
        variables["sequence_output_layernorm/scale"],
        loader.get("norm.weight", (d,)),
    )
    return backbone


def _check_heads(config, hidden, heads):
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


_CONVERTERS = {
    "opt": (
        keras_hub.models.OPTBackbone,
        _convert_opt_config,
        _convert_opt_weights,
    ),
    "gpt_neox": (
        keras_hub.models.GPTNeoXBackbone,
        _convert_gpt_neox_config,
        _convert_gpt_neox_weights,
    ),
    "phi3": (
        keras_hub.models.Phi3Backbone,
        _convert_phi3_config,
        _convert_phi3_weights,
    ),
}
