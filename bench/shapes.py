"""Model shapes the benchmarks build, with random weights."""

import keras
import keras_hub

SHAPES = ("gpt2_small", "smollm2_135m", "tiny")


def build_backbone(shape, dtype="float32", seed=0):
    """A keras-hub backbone of a named shape with random weights.

    - `gpt2_small`: GPT-2 small (12 layers, 768 wide, 12 heads, vocabulary
      50257);
    - `smollm2_135m`: the embedded default's shape (Llama: 30 layers, 576
      wide, 9 query / 3 key-value heads, vocabulary 49152, tied
      embeddings);
    - `tiny`: a 2-layer GPT-2 for smoke tests.
    """
    keras.utils.set_random_seed(seed)
    if shape == "gpt2_small":
        return keras_hub.models.GPT2Backbone(
            vocabulary_size=50257,
            num_layers=12,
            num_heads=12,
            hidden_dim=768,
            intermediate_dim=3072,
            max_sequence_length=1024,
            dtype=dtype,
        )
    if shape == "smollm2_135m":
        return keras_hub.models.LlamaBackbone(
            vocabulary_size=49152,
            num_layers=30,
            num_query_heads=9,
            num_key_value_heads=3,
            hidden_dim=576,
            intermediate_dim=1536,
            rope_max_wavelength=100000.0,
            layer_norm_epsilon=1e-5,
            tie_word_embeddings=True,
            dtype=dtype,
        )
    if shape == "tiny":
        return keras_hub.models.GPT2Backbone(
            vocabulary_size=512,
            num_layers=2,
            num_heads=2,
            hidden_dim=32,
            intermediate_dim=64,
            max_sequence_length=256,
            dtype=dtype,
        )
    raise ValueError(f"`shape` must be one of {SHAPES}. Received: {shape!r}.")


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
