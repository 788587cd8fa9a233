"""Serving latency: the exported SavedModel's `logits` and `generate_ids`
signatures against Keras's `predict` and `generate` on the same model.

The model is a LoRA-adapted causal LM exported the way `tf-adapters
export` does (adapter merged, token-id signatures only), then loaded back
with `tf.saved_model.load` as TF Serving's loader would.
"""

import tempfile
import time

import numpy as np
import tensorflow as tf

from bench.generate import build_lm
from bench.generate import prompts
from bench.shapes import id_range
from bench.timing import interleaved
from bench.timing import paired_ratio
from bench.timing import summary
from tf_adapters.export.saved_model import export_saved_model


def run(
    shape="gpt2_small",
    batch_size=1,
    prompt_length=32,
    new_tokens=16,
    jit_compile=True,
    rounds=5,
    steps=2,
):
    lm = build_lm(shape, "lora_unmerged", jit_compile)
    start = time.perf_counter()
    path = export_saved_model(
        lm,
        tempfile.mkdtemp(prefix="bench_serving_"),
        "bench",
        text=False,
    )
    export_s = time.perf_counter() - start
    served = tf.saved_model.load(path)
    vocab = id_range(shape)
    x = prompts(batch_size, prompt_length, new_tokens, vocab)
    prompt = {k: v[:, :prompt_length] for k, v in x.items()}
    sig_logits = served.signatures["logits"]
    sig_generate = served.signatures["generate_ids"]
    new = tf.constant(new_tokens, tf.int32)
    candidates = {
        "savedmodel_logits": lambda: sig_logits(
            **{k: tf.constant(v) for k, v in prompt.items()}
        )["logits"].numpy(),
        "keras_predict": lambda: lm.predict(prompt, verbose=0),
        "savedmodel_generate_ids": lambda: sig_generate(
            **{k: tf.constant(v) for k, v in prompt.items()},
            max_new_tokens=new,
        )["token_ids"].numpy(),
        "keras_generate": lambda: lm.generate(x, stop_token_ids=None),
    }
    first = {}
    for name, fn in candidates.items():
        t = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t
    # Same greedy tokens from both (the export merged the adapter).
    served_ids = candidates["savedmodel_generate_ids"]()
    keras_ids = np.asarray(candidates["keras_generate"]()["token_ids"])
    times = interleaved(candidates, rounds, steps)
    rows = {
        name: {**summary(times[name]), "first_call_s": first[name]}
        for name in candidates
    }
    rows["savedmodel_logits"]["vs_keras"] = paired_ratio(
        times, "savedmodel_logits", "keras_predict", steps
    )
    rows["savedmodel_generate_ids"]["vs_keras"] = paired_ratio(
        times, "savedmodel_generate_ids", "keras_generate", steps
    )
    return {
        "shape": shape,
        "batch_size": batch_size,
        "prompt_length": prompt_length,
        "new_tokens": new_tokens,
        "jit_compile": jit_compile,
        "export_s": export_s,
        "same_tokens": bool(np.array_equal(served_ids, keras_ids)),
        "calls": rows,
    }
