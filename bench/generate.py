"""Generation speed: the base model, an unmerged adapter, a merged one,
and Hugging Face `transformers` on the same shape.

Every Keras variant is its own keras-hub `CausalLM` (same random base
weights), compiled the same way; `generate` runs greedy decoding with
keras-hub's KV cache, no stop token, so every call makes exactly
`new_tokens` tokens per row. The `transformers` row is the PyTorch model of
the same shape (`bench.peer`, random weights) running `model.generate(
do_sample=False)` with its KV cache, exactly `new_tokens` tokens too, at
`torch.set_num_threads(cores)`. Variants are timed in interleaved rounds.
On a GPU (`gpu=True`, `python -m bench --gpu`) the Keras variants run
under `dtype` (a mixed policy) and `transformers` on CUDA under bfloat16
autocast.
"""

import gc
import time

import keras_hub
import numpy as np

import tf_adapters as tfa
from bench import peer
from bench.shapes import build_backbone
from bench.shapes import id_range
from bench.timing import interleaved
from bench.timing import paired_ratio
from bench.timing import summary
from bench.train import RANK
from bench.train import TARGETS

VARIANTS = ("base", "lora_unmerged", "lora_merged", "houlsby", "transformers")


def build_lm(shape, variant, jit_compile, dtype="float32"):
    backbone = build_backbone(shape, dtype)
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


def _callers(
    shape, variants, jit_compile, prompt_length, new_tokens, dtype, gpu
):
    """{variant: `call_for(x)`}, {variant: params} and notes."""
    callers, params, notes = {}, {}, []
    for v in variants:
        if v == "transformers":
            continue
        lm = build_lm(shape, v, jit_compile, dtype)
        callers[v] = lambda x, lm=lm: (
            lambda: lm.generate(x, stop_token_ids=None)
        )
        params[v] = lm.backbone.count_params()
    if "transformers" in variants:
        why = peer.available(gpu)
        if why:
            notes.append(why)
        else:
            peer.set_threads()
            device = "cuda" if gpu else "cpu"
            call_for, params["transformers"] = peer.generator(shape, device)
            # The prompt alone: `generate` appends the new tokens.
            callers["transformers"] = lambda x: call_for(
                x["token_ids"][:, :prompt_length], new_tokens
            )
    return {v: callers[v] for v in variants if v in callers}, params, notes


def _batch_rows(callers, x, batch_size, new_tokens, rounds, steps):
    calls = {v: call_for(x) for v, call_for in callers.items()}
    first = {}
    for v, call in calls.items():
        start = time.perf_counter()
        call()
        first[v] = time.perf_counter() - start
    times = interleaved(calls, rounds, steps)
    rows = {}
    for v in calls:
        stats = summary(times[v])
        rows[v] = {
            **stats,
            "new_tokens_per_s": batch_size * new_tokens / stats["median_s"],
            "first_call_s": first[v],
        }
        for other in ("base", "transformers"):
            if other in calls and v not in (other, "transformers"):
                # > 1: faster than `other`.
                rows[v][f"vs_{other}"] = paired_ratio(times, v, other, steps)
    return {"batch_size": batch_size, "variants": rows}


def run(
    shape="gpt2_small",
    variants=VARIANTS,
    batch_sizes=(1, 8),
    prompt_length=32,
    new_tokens=32,
    jit_compile=True,
    rounds=5,
    steps=1,
    dtype="float32",
    gpu=False,
):
    """New tokens per second of each variant at each batch size."""
    callers, params, notes = _callers(
        shape, variants, jit_compile, prompt_length, new_tokens, dtype, gpu
    )
    vocab = id_range(shape)
    results = [
        _batch_rows(
            callers,
            prompts(b, prompt_length, new_tokens, vocab),
            b,
            new_tokens,
            rounds,
            steps,
        )
        for b in batch_sizes
    ]
    del callers
    gc.collect()
    return {
        "shape": shape,
        "jit_compile": jit_compile,
        "dtype": dtype,
        "gpu": gpu,
        "prompt_length": prompt_length,
        "new_tokens": new_tokens,
        "rounds": rounds,
        "params": params,
        "notes": notes,
        "batches": results,
    }
