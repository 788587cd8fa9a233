"""Model shapes the benchmarks build, with random weights."""

import keras
import keras_hub

SHAPES = ("gpt2_small", "smollm2_135m", "tiny")


# One table of dimensions per shape; `build_backbone` (keras-hub) and
# `bench.peer.hf_config` (transformers) both read it.
DIMS = {
    "gpt2_small": dict(
        family="gpt2",
        vocabulary=50257,
        layers=12,
        heads=12,
        kv_heads=12,
        hidden=768,
        intermediate=3072,
        max_length=1024,
    ),
    "smollm2_135m": dict(
        family="llama",
        vocabulary=49152,
        layers=30,
        heads=9,
        kv_heads=3,
        hidden=576,
        intermediate=1536,
        rope_wavelength=100000.0,
        norm_epsilon=1e-5,
        tied=True,
    ),
    "tiny": dict(
        family="gpt2",
        vocabulary=512,
        layers=2,
        heads=2,
        kv_heads=2,
        hidden=32,
        intermediate=64,
        max_length=256,
    ),
}


def dims(shape):
    """The dimensions of a named shape (`DIMS[shape]`), or a clear error."""
    if shape not in DIMS:
        raise ValueError(
            f"`shape` must be one of {SHAPES}. Received: {shape!r}."
        )
    return DIMS[shape]


def id_range(shape):
    """How many token ids random inputs for `shape` draw from: the tiny
    shape's vocabulary, else the smallest vocabulary among the real shapes
    (49152), so that GPT-2 small and the SmolLM2 shape read the same ids."""
    if dims(shape) is DIMS["tiny"]:
        return DIMS["tiny"]["vocabulary"]
    return min(DIMS[s]["vocabulary"] for s in SHAPES if s != "tiny")


def build_backbone(shape, dtype="float32", seed=0):
    """A keras-hub backbone of a named shape with random weights.

    - `gpt2_small`: GPT-2 small (12 layers, 768 wide, 12 heads, vocabulary
      50257);
    - `smollm2_135m`: the embedded default's shape (Llama: 30 layers, 576
      wide, 9 query / 3 key-value heads, vocabulary 49152, tied
      embeddings);
    - `tiny`: a 2-layer GPT-2 for smoke tests.
    """
    d = dims(shape)
    keras.utils.set_random_seed(seed)
    if d["family"] == "gpt2":
        return keras_hub.models.GPT2Backbone(
            vocabulary_size=d["vocabulary"],
            num_layers=d["layers"],
            num_heads=d["heads"],
            hidden_dim=d["hidden"],
            intermediate_dim=d["intermediate"],
            max_sequence_length=d["max_length"],
            dtype=dtype,
        )
    return keras_hub.models.LlamaBackbone(
        vocabulary_size=d["vocabulary"],
        num_layers=d["layers"],
        num_query_heads=d["heads"],
        num_key_value_heads=d["kv_heads"],
        hidden_dim=d["hidden"],
        intermediate_dim=d["intermediate"],
        rope_max_wavelength=d["rope_wavelength"],
        layer_norm_epsilon=d["norm_epsilon"],
        tie_word_embeddings=d["tied"],
        dtype=dtype,
    )


def matmul_params(backbone):
    """N for the FLOP count: every weight that a token's forward pass
    multiplies with (the token embedding counts once, as the tied output
    projection; position embeddings and norms are lookups/elementwise)."""
    total = 0
    for var in backbone.weights:
        if (
            len(var.shape) < 2
            or "position_embedding" in var.path
            or var.path.endswith("bias")
        ):
            continue
        size = 1
        for dim in var.shape:
            size *= int(dim)
        total += size
    return total
