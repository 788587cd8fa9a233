"""Generation speed: the base model, an unmerged adapter and a merged one.

Every variant is its own keras-hub `CausalLM` (same random base weights),
compiled the same way; `generate` runs greedy decoding with keras-hub's KV
cache, no stop token, so every call makes exactly `new_tokens` tokens per
row. Variants are timed in interleaved rounds.
"""

import gc
import time

import keras_hub
import numpy as np

import tf_adapters as tfa
from bench.shapes import build_backbone
from bench.timing import interleaved
from bench.timing import paired_ratio
from bench.timing import summary
from bench.train import RANK
from bench.train import TARGETS

VARIANTS = ("base", "lora_unmerged", "lora_merged", "houlsby")


def build_lm(shape, variant, jit_compile):
    backbone = build_backbone(shape)
    if variant.startswith("lora"):
        config = tfa.LoraConfig(rank=RANK, alpha=RANK, target_layers=TARGETS)
        tfa.add_adapter(backbone, config, name="bench")
        # A trained-looking adapter: B is zero at the start.
        for var in backbone.weights:
            if var.path.endswith("lora_b"):
                var.assign(np.full(var.shape, 0.01, "float32"))
        if variant == "lora_merged":
            tfa.merge_adapter(backbone)
    elif variant == "houlsby":
        tfa.add_adapter(
            backbone, tfa.BottleneckConfig(variant="houlsby"), "bench"
        )
    lm_class = (
        keras_hub.models.GPT2CausalLM
        if isinstance(backbone, keras_hub.models.GPT2Backbone)
        else keras_hub.models.LlamaCausalLM
    )
    lm = lm_class(backbone, preprocessor=None)
    lm.compile(sampler="greedy", jit_compile=jit_compile)
    return lm


def prompts(batch_size, prompt_length, new_tokens, vocab, seed=0):
    rng = np.random.default_rng(seed)
    total = prompt_length + new_tokens
    ids = np.zeros((batch_size, total), "int32")
    ids[:, :prompt_length] = rng.integers(0, vocab, (batch_size, prompt_length))
    mask = np.zeros((batch_size, total), "int32")
    mask[:, :prompt_length] = 1
    return {"token_ids": ids, "padding_mask": mask}


def run(
    shape="gpt2_small",
    variants=VARIANTS,
    batch_sizes=(1, 8),
    prompt_length=32,
    new_tokens=32,
    jit_compile=True,
    rounds=5,
    steps=1,
):
    """New tokens per second of each variant at each batch size."""
    lms = {v: build_lm(shape, v, jit_compile) for v in variants}
    vocab = 512 if shape == "tiny" else 49152
    results = []
    for batch_size in batch_sizes:
        x = prompts(batch_size, prompt_length, new_tokens, vocab)
        first = {}
        for v, lm in lms.items():
            start = time.perf_counter()
            lm.generate(x, stop_token_ids=None)
            first[v] = time.perf_counter() - start

        def call(lm, x=x):
            return lambda: lm.generate(x, stop_token_ids=None)

        times = interleaved(
            {v: call(lm) for v, lm in lms.items()}, rounds, steps
        )
        rows = {}
        for v in variants:
            stats = summary(times[v])
            rows[v] = {
                **stats,
                "new_tokens_per_s": batch_size * new_tokens / stats["median_s"],
                "first_call_s": first[v],
            }
            if v != "base":
                # > 1: faster than the base.
                rows[v]["vs_base"] = paired_ratio(times, v, "base", steps)
        results.append({"batch_size": batch_size, "variants": rows})
    del lms
    gc.collect()
    return {
        "shape": shape,
        "jit_compile": jit_compile,
        "prompt_length": prompt_length,
        "new_tokens": new_tokens,
        "rounds": rounds,
        "batches": results,
    }
