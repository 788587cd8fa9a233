"""Reads a Llama-architecture GGUF file into float32 NumPy arrays.

Weights come back in Hugging Face's layout (`(out, in)` matrices, Q/K rows in
HF's rotary order): llama.cpp permutes the rows of Q and K so that its RoPE
rotates adjacent pairs, and we undo that per head here.

The file is checked before a weight is dequantized: the header against the
file's size (`gguf_file`), then the hyperparameters' types and every
tensor's shape against the model they describe, and the tokenizer's
tables against the vocabulary.
"""

import dataclasses
import math
import os

import numpy as np

from tf_adapters.core.integrity import corrupt
from tf_adapters.models.gguf.gguf_file import ADVICE
from tf_adapters.models.gguf.gguf_file import WHAT
from tf_adapters.models.gguf.gguf_file import read_gguf

# config key → (GGUF key, default or None when required, kind)
_CONFIG = {
    "num_layers": ("llama.block_count", None, int),
    "hidden_dim": ("llama.embedding_length", None, int),
    "intermediate_dim": ("llama.feed_forward_length", None, int),
    "num_query_heads": ("llama.attention.head_count", None, int),
    "num_key_value_heads": ("llama.attention.head_count_kv", None, int),
    "rope_max_wavelength": ("llama.rope.freq_base", 10000.0, float),
    "layer_norm_epsilon": (
        "llama.attention.layer_norm_rms_epsilon",
        1e-6,
        float,
    ),
    "context_length": ("llama.context_length", 2048, int),
}
# Each layer's tensors and their shapes, numpy order (HF's `(out, in)`):
# hidden size, key/value width, feed-forward width.
_LAYER = {
    "attn_norm": ("d",),
    "ffn_norm": ("d",),
    "attn_q": ("d", "d"),
    "attn_k": ("kv", "d"),
    "attn_v": ("kv", "d"),
    "attn_output": ("d", "d"),
    "ffn_gate": ("ffn", "d"),
    "ffn_up": ("ffn", "d"),
    "ffn_down": ("d", "ffn"),
}
_SPECIAL_DEFAULTS = {"bos": 1, "eos": 2}
_SPECIAL_ROLES = ("bos", "eos", "padding", "unknown")


@dataclasses.dataclass
class LlamaGGUF:
    """Hyperparameters, tokenizer and float32 weights of a GGUF Llama."""

    config: dict
    tokens: list
    merges: list
    token_types: list
    special: dict
    weights: dict


def read_llama_gguf(path):
    """Reads the Llama GGUF file at `path`.

    Raises:
        FileNotFoundError: `path` does not exist.
        CorruptFileError: the file is damaged, or its hyperparameters,
            tensors and tokenizer do not describe one Llama model.
        ValueError: the file holds another architecture or tokenizer.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GGUF file {path} not found.")
    found = read_gguf(path)
    fields = found.fields

    def fail(problem):
        return corrupt(path, WHAT, problem, ADVICE)

    arch = fields.get("general.architecture")
    if arch != "llama":
        raise ValueError(
            f"{path} holds a {arch!r} model; only 'llama' GGUF files "
            "(Llama, SmolLM, Mistral-style decoders) can be converted."
        )
    if fields.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(
            f"{path} has a {fields.get('tokenizer.ggml.model')!r} "
            "tokenizer; only byte-level BPE ('gpt2') tokenizers convert."
        )
    config = {
        name: _number(fields, key, default, kind, fail)
        for name, (key, default, kind) in _CONFIG.items()
    }
    _check_heads(config, fail)
    shapes = expected_shapes(config, found.tensors, fail)
    config["vocabulary_size"] = shapes["token_embd.weight"][0]
    config["tie_word_embeddings"] = "output.weight" not in shapes
    tokens, merges, types, special = _tokenizer(fields, config, fail)
    weights = {name: _finite(found, name, fail) for name in shapes}
    head_dim = config["hidden_dim"] // config["num_query_heads"]
    for i in range(config["num_layers"]):
        for name, heads in (
            ("attn_q", config["num_query_heads"]),
            ("attn_k", config["num_key_value_heads"]),
        ):
            key = f"blk.{i}.{name}.weight"
            weights[key] = unpermute_rope_rows(weights[key], heads, head_dim)
    return LlamaGGUF(config, tokens, merges, types, special, weights)


def _finite(found, name, fail):
    """Tensor `name` dequantized; a damaged block (a scale whose bits
    spell NaN) would make a model that computes NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        weight = found.dequantize(name)
    if not np.isfinite(weight).all():
        raise fail(f"has tensor {name!r} holding NaN or Inf values")
    return weight


def _number(fields, key, default, kind, fail):
    value = fields.get(key, default)
    ok = isinstance(value, (int, float) if kind is float else int)
    if not ok or isinstance(value, bool) or not math.isfinite(value):
        missing = "lacks" if value is None else f"has {value!r} for"
        raise fail(f"{missing} {key!r} ({kind.__name__} expected)")
    if value <= 0:
        raise fail(f"has {key}={value!r}; it must be positive")
    return kind(value)


def _check_heads(config, fail):
    hidden, heads = config["hidden_dim"], config["num_query_heads"]
    kv_heads = config["num_key_value_heads"]
    if hidden % heads or (hidden // heads) % 2 or heads % kv_heads:
        raise fail(
            f"has hidden size {hidden}, {heads} query heads and {kv_heads} "
            "key/value heads: the heads must divide the hidden size into "
            "even head sizes, and the key/value heads the query heads"
        )


def expected_shapes(config, tensors, fail):
    """`{tensor name: numpy-order shape}` of the weights a Llama of
    `config` needs, each checked against the file's tensor infos."""
    d, ffn = config["hidden_dim"], config["intermediate_dim"]
    kv = config["num_key_value_heads"] * (d // config["num_query_heads"])
    if config["num_layers"] * len(_LAYER) > len(tensors):
        raise fail(
            f"declares {config['num_layers']} layers but holds "
            f"{len(tensors)} tensors, too few for them"
        )
    embedding = tensors.get("token_embd.weight")
    vocab = embedding.shape[0] if embedding is not None else 0
    wanted = {"token_embd.weight": (vocab, d), "output_norm.weight": (d,)}
    if "output.weight" in tensors:
        wanted["output.weight"] = (vocab, d)
    sizes = {"d": d, "kv": kv, "ffn": ffn}
    for i in range(config["num_layers"]):
        for name, dims in _LAYER.items():
            shape = tuple(sizes[n] for n in dims)
            wanted[f"blk.{i}.{name}.weight"] = shape
    for name, shape in wanted.items():
        info = tensors.get(name)
        if info is None:
            raise fail(f"lacks tensor {name!r}")
        if info.shape != shape or not vocab:
            raise fail(
                f"has tensor {name!r} of shape {info.shape}; the model's "
                f"hyperparameters need {shape}"
            )
    return wanted


def _tokenizer(fields, config, fail):
    vocab = config["vocabulary_size"]
    tokens = fields.get("tokenizer.ggml.tokens")
    merges = fields.get("tokenizer.ggml.merges")
    types = fields.get("tokenizer.ggml.token_type")
    if not _list_of(tokens, str) or len(tokens) != vocab:
        raise fail(f"lacks a list of {vocab} tokenizer.ggml.tokens")
    if not _list_of(merges, str) or not all(" " in m for m in merges):
        raise fail("lacks tokenizer.ggml.merges (strings 'a b')")
    if not _list_of(types, int) or len(types) != vocab:
        raise fail(f"lacks a list of {vocab} tokenizer.ggml.token_type")
    special = {}
    for role in _SPECIAL_ROLES:
        value = fields.get(f"tokenizer.ggml.{role}_token_id")
        if value is None:
            value = _SPECIAL_DEFAULTS.get(role)
            if value is None:
                continue
        if not isinstance(value, int) or not 0 <= value < vocab:
            raise fail(f"has {role} token id {value!r}, outside the vocabulary")
        special[role] = value
    return tokens, merges, types, special


def _list_of(value, kind):
    return isinstance(value, list) and all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    )


def unpermute_rope_rows(w, num_heads, head_dim):
    """Undoes llama.cpp's per-head row permutation of a Q or K matrix."""
    d_in = w.shape[1]
    w = w.reshape(num_heads, head_dim // 2, 2, d_in).swapaxes(1, 2)
    return w.reshape(num_heads * head_dim, d_in)
