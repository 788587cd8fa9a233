"""Training speed: full fine-tuning, each adapter method, and Keras's
`Backbone.enable_lora`, timed in interleaved rounds in one process.

`memory` runs one method alone: a process's peak resident memory is all it
has, so memory is measured one method per process (`bench.child`).
"""

import gc
import time

import keras
import numpy as np

import tf_adapters as tfa
from bench.shapes import build_backbone
from bench.shapes import matmul_params
from bench.timing import interleaved
from bench.timing import paired_ratio
from bench.timing import peak_rss_mb
from bench.timing import summary
from tf_adapters.tasks.language_model import LanguageModel

METHODS = (
    "full",
    "lora",
    "enable_lora",
    "houlsby",
    "pfeiffer",
    "parallel",
    "ia3",
    "prompt_tuning",
)
RANK = 8
TARGETS = ["query", "value"]  # keras-hub's own LoRA targets for both shapes


def adapter_config(method):
    if method == "lora":
        return tfa.LoraConfig(rank=RANK, alpha=RANK, target_layers=TARGETS)
    if method == "ia3":
        return tfa.IA3Config()
    if method == "prompt_tuning":
        return tfa.PromptTuningConfig(num_virtual_tokens=20)
    return tfa.BottleneckConfig(variant=method)


def build_trainer(shape, method, dtype, jit_compile):
    """A compiled next-token model whose trainable weights are `method`'s."""
    backbone = build_backbone(shape, dtype)
    if method == "full":
        backbone.trainable = True
    elif method == "enable_lora":
        backbone.enable_lora(RANK, target_layer_names=TARGETS)
    else:
        tfa.add_adapter(backbone, adapter_config(method), name="bench")
    model = LanguageModel(backbone)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def batch(shape, batch_size, sequence_length, seed=0):
    vocab = 512 if shape == "tiny" else 49152
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (batch_size, sequence_length + 1), "int32")
    x = {
        "token_ids": ids[:, :-1],
        "padding_mask": np.ones((batch_size, sequence_length), "int32"),
    }
    return x, ids[:, 1:]


def _trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def run(
    shape="gpt2_small",
    methods=METHODS,
    dtype="float32",
    jit_compile=True,
    batch_size=4,
    sequence_length=128,
    rounds=5,
    steps=2,
    peak_flops=None,
):
    """Times every method's training step; returns a dict for the report.

    Each model is built and compiled, then its first step is timed alone
    (tracing and compilation); then all methods run `rounds` interleaved
    rounds of `steps` steps each.
    """
    x, y = batch(shape, batch_size, sequence_length)
    tokens = batch_size * sequence_length
    models, first, params = {}, {}, {}
    # Build every model before the first step: building seeds the global
    # random state, which makes TensorFlow retrace functions traced before.
    for method in methods:
        models[method] = build_trainer(shape, method, dtype, jit_compile)
        params[method] = _trainable(models[method])
    for method, model in models.items():
        start = time.perf_counter()
        model.train_on_batch(x, y)
        first[method] = time.perf_counter() - start
        for _ in range(2):  # warm-up, not timed
            model.train_on_batch(x, y)
    n = matmul_params(next(iter(models.values())).backbone)

    def step_of(model):
        return lambda: model.train_on_batch(x, y)

    times = interleaved(
        {m: step_of(model) for m, model in models.items()}, rounds, steps
    )
    rows = {}
    for method in methods:
        stats = summary(times[method])
        flops_per_token = (6 if method == "full" else 4) * n
        tokens_per_s = tokens / stats["median_s"]
        rows[method] = {
            **stats,
            "tokens_per_s": tokens_per_s,
            "first_step_s": first[method],
            "trainable_params": params[method],
            "mfu": flops_per_token * tokens_per_s / peak_flops
            if peak_flops
            else None,
        }
        if "full" in methods and method != "full":
            rows[method]["vs_full"] = paired_ratio(times, method, "full", steps)
        if "enable_lora" in methods and method == "lora":
            rows[method]["vs_enable_lora"] = paired_ratio(
                times, "lora", "enable_lora", steps
            )
    del models
    gc.collect()
    return {
        "shape": shape,
        "dtype": dtype,
        "jit_compile": jit_compile,
        "batch_size": batch_size,
        "sequence_length": sequence_length,
        "rounds": rounds,
        "steps_per_round": steps,
        "matmul_params": n,
        "methods": rows,
    }


def memory(
    shape,
    method,
    dtype="float32",
    jit_compile=True,
    batch_size=4,
    sequence_length=128,
):
    """Peak resident memory of a process that builds one model and runs
    three training steps."""
    x, y = batch(shape, batch_size, sequence_length)
    before = peak_rss_mb()
    model = build_trainer(shape, method, dtype, jit_compile)
    built = peak_rss_mb()
    for _ in range(3):
        model.train_on_batch(x, y)
    return {
        "method": method,
        "peak_rss_mb": peak_rss_mb(),
        "after_build_mb": built,
        "before_build_mb": before,
    }
