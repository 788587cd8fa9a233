"""Tiny keras-hub models with random weights (no downloads)."""

import keras
import keras_hub
import numpy as np

VOCAB = 64


def gpt2(**overrides):
    """A tiny GPT-2 backbone; keyword arguments override its shape."""
    config = dict(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=64,
    )
    return keras_hub.models.GPT2Backbone(**{**config, **overrides})


BACKBONES = {
    "gpt2": lambda: gpt2(),
    "opt": lambda: keras_hub.models.OPTBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=64,
    ),
    "gpt_neox": lambda: keras_hub.models.GPTNeoXBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,  # rotary needs an even rotary dim: 8 * 0.25
        intermediate_dim=32,
        max_sequence_length=64,
    ),
    "llama": lambda: keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
    ),
    "mistral": lambda: keras_hub.models.MistralBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
    ),
    "gemma": lambda: gemma(),
}


def gemma(**overrides):
    """A tiny Gemma backbone; keyword arguments override its shape."""
    config = dict(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        head_dim=4,
    )
    return keras_hub.models.GemmaBackbone(**{**config, **overrides})


def gemma_sliding():
    """A tiny Gemma 2-style backbone: every other layer attends through a
    sliding window (not in `BACKBONES`: prefix tuning refuses it)."""
    return gemma(use_sliding_window_attention=True)


def backbone(family="gpt2", seed=0):
    keras.utils.set_random_seed(seed)
    return BACKBONES[family]()


def inputs(batch=2, length=10, seed=0, pad=True):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, VOCAB, (batch, length)).astype("int32")
    mask = np.ones((batch, length), "int32")
    if pad and batch > 1:
        mask[-1, length // 2 :] = 0
        token_ids[-1, length // 2 :] = 0
    return {"token_ids": token_ids, "padding_mask": mask}


def gpt2_causal_lm(seed=0, sequence_length=12):
    """A GPT-2 causal LM with a real (tiny) BPE tokenizer, as in keras-hub's
    own tests."""
    keras.utils.set_random_seed(seed)
    merges = ["Ġ a", "Ġ t", "Ġ i", "Ġ b", "a i", "p l", "n e"]
    merges += ["Ġa t", "p o", "r t", "Ġt h", "ai r", "pl a", "po rt"]
    merges += ["Ġai r", "Ġa i", "pla ne"]
    tokens = ["!", *"Ġabehilnoprt"]
    tokens += [m.replace(" ", "") for m in merges] + ["<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocab, merges=merges)
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer, sequence_length=sequence_length
    )
    backbone = gpt2(vocabulary_size=tokenizer.vocabulary_size())
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor=preprocessor)


TRAIN_TEXT = [" airplane at airport", " the airplane", " airport air"] * 4


def randomize_adapter(model, seed=1):
    """Gives every trainable adapter variable random values, so that merge
    and save/load checks compare non-trivial adapters."""
    rng = np.random.default_rng(seed)
    for var in model.trainable_weights:
        noise = rng.normal(0, 0.3, var.shape).astype("float32")
        if "magnitude" in var.path:  # DoRA: a norm, moved but kept positive
            noise = var.numpy() * (1 + 0.3 * np.tanh(noise))
        var.assign(noise)


def all_configs():
    import tf_adapters as tfa

    return {
        "lora": tfa.LoraConfig(rank=2, alpha=4),
        # LoRA variants: DoRA from OLoRA's start on every projection, and
        # PiSSA on the family's default targets.
        "dora": tfa.LoraConfig(
            rank=2,
            alpha=4,
            use_dora=True,
            init="olora",
            target_layers="all-linear",
        ),
        "pissa": tfa.LoraConfig(rank=2, alpha=4, init="pissa"),
        "houlsby": tfa.BottleneckConfig(variant="houlsby", bottleneck_size=4),
        "pfeiffer": tfa.BottleneckConfig(variant="pfeiffer", bottleneck_size=4),
        "parallel": tfa.BottleneckConfig(variant="parallel", bottleneck_size=4),
        "ia3": tfa.IA3Config(),
        "prompt": tfa.PromptTuningConfig(num_virtual_tokens=3),
        "prefix": tfa.PrefixTuningConfig(num_virtual_tokens=3, projection=8),
    }
