"""Reads a Llama-architecture GGUF file into float32 NumPy arrays.

Weights come back in Hugging Face's layout (`(out, in)` matrices, Q/K rows in
HF's rotary order): llama.cpp permutes the rows of Q and K so that its RoPE
rotates adjacent pairs, and we undo that per head here.
"""

import dataclasses
import os

import numpy as np


@dataclasses.dataclass
class LlamaGGUF:
    """Hyperparameters, tokenizer and float32 weights of a GGUF Llama."""

    config: dict
    tokens: list
    merges: list
    token_types: list
    special: dict
    weights: dict


def _require_gguf():
    try:
        import gguf
    except ImportError:
        raise ImportError(
            "Reading GGUF files needs the `gguf` package: `pip install gguf`."
        ) from None
    return gguf


def _field(reader, key, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def read_llama_gguf(path):
    """Reads the Llama GGUF file at `path`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a GGUF Llama model.
    """
    gguf = _require_gguf()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GGUF file {path} not found.")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as e:  # the reader raises bare errors on bad files
        raise ValueError(f"{path} is not a readable GGUF file: {e}") from None
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(
            f"{path} holds a {arch!r} model; only 'llama' GGUF files "
            "(Llama, SmolLM, Mistral-style decoders) can be converted."
        )
    config = {
        "num_layers": int(_field(reader, "llama.block_count")),
        "hidden_dim": int(_field(reader, "llama.embedding_length")),
        "intermediate_dim": int(_field(reader, "llama.feed_forward_length")),
        "num_query_heads": int(_field(reader, "llama.attention.head_count")),
        "num_key_value_heads": int(
            _field(reader, "llama.attention.head_count_kv")
        ),
        "rope_max_wavelength": float(
            _field(reader, "llama.rope.freq_base", 10000.0)
        ),
        "layer_norm_epsilon": float(
            _field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-6)
        ),
        "context_length": int(_field(reader, "llama.context_length", 2048)),
    }
    weights = {}
    for tensor in reader.tensors:
        array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        weights[tensor.name] = np.asarray(array, dtype="float32")
    config["vocabulary_size"] = weights["token_embd.weight"].shape[0]
    config["tie_word_embeddings"] = "output.weight" not in weights
    head_dim = config["hidden_dim"] // config["num_query_heads"]
    for i in range(config["num_layers"]):
        for name, heads in (
            ("attn_q", config["num_query_heads"]),
            ("attn_k", config["num_key_value_heads"]),
        ):
            key = f"blk.{i}.{name}.weight"
            weights[key] = unpermute_rope_rows(weights[key], heads, head_dim)
    if _field(reader, "tokenizer.ggml.model") != "gpt2":
        raise ValueError(
            f"{path} has a {_field(reader, 'tokenizer.ggml.model')!r} "
            "tokenizer; only byte-level BPE ('gpt2') tokenizers convert."
        )
    special = {
        role: int(_field(reader, f"tokenizer.ggml.{role}_token_id"))
        for role in ("bos", "eos", "padding", "unknown")
        if f"tokenizer.ggml.{role}_token_id" in reader.fields
    }
    return LlamaGGUF(
        config=config,
        tokens=list(_field(reader, "tokenizer.ggml.tokens")),
        merges=list(_field(reader, "tokenizer.ggml.merges")),
        token_types=list(_field(reader, "tokenizer.ggml.token_type")),
        special=special,
        weights=weights,
    )


def unpermute_rope_rows(w, num_heads, head_dim):
    """Undoes llama.cpp's per-head row permutation of a Q or K matrix."""
    d_in = w.shape[1]
    w = w.reshape(num_heads, head_dim // 2, 2, d_in).swapaxes(1, 2)
    return w.reshape(num_heads * head_dim, d_in)
