"""A small end-to-end example that runs offline in about a minute.

It uses a randomly initialised GPT-2-shaped model (no download) and a
synthetic task (continue an arithmetic progression of token ids), so that the
whole adapter life cycle is exercised: add → train → save → reload on a fresh
base → merge. The real main job on a pretrained model is `tf-adapters
finetune` (see the README).
"""

import json
import logging
import os

import numpy as np

from tf_adapters.checkpoint import load_adapter
from tf_adapters.checkpoint import save_adapter
from tf_adapters.core.atomic import atomic_write_text
from tf_adapters.injection.api import add_adapter
from tf_adapters.injection.unload import merge_and_unload
from tf_adapters.methods.lora import LoraConfig
from tf_adapters.summary import trainable_summary

log = logging.getLogger("tf_adapters.demo")


def _progressions(n, length, vocab, rng):
    start = rng.integers(0, vocab, (n, 1))
    step = rng.integers(1, 5, (n, 1))
    return ((start + step * np.arange(length + 1)) % vocab).astype("int32")


def _dataset(seqs):
    x = {
        "token_ids": seqs[:, :-1],
        "padding_mask": np.ones_like(seqs[:, :-1]),
    }
    return x, seqs[:, 1:]


def _build(seed, vocab, length):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=vocab,
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=length,
        dropout=0.0,
    )
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)


def _accuracy(model, x, y):
    logits = model.predict(x, verbose=0)
    return float(np.mean(np.argmax(logits[:, 3:], -1) == y[:, 3:]))


VOCAB, LENGTH = 128, 24
TARGETS = [
    "query",
    "value",
    "attention_output",
    "feedforward_intermediate_dense",
    "feedforward_output_dense",
]


def run_demo(output="runs/demo", epochs=6, rank=8, seed=0):
    """Adds LoRA to a tiny random GPT-2, trains it on arithmetic
    progressions, saves and reloads the adapter, merges it; returns the
    report (also `output/report.json`), whose `ok` says all went as
    expected."""
    rng = np.random.default_rng(seed)
    train = _dataset(_progressions(2048, LENGTH, VOCAB, rng))
    test = _dataset(_progressions(256, LENGTH, VOCAB, rng))
    model = _build(seed, VOCAB, LENGTH)
    report = _train(model, train, test, epochs, rank)
    report.update(_round_trip(model, test[0], output, seed))
    report["ok"] = (
        report["tuned_accuracy"] > report["base_accuracy"] + 0.2
        and report["reload_max_abs_diff"] < 1e-5
        and report["merged_max_abs_diff"] < 1e-4
    )
    os.makedirs(output, exist_ok=True)
    text = json.dumps(report, indent=2)
    atomic_write_text(os.path.join(output, "report.json"), text)
    log.info(text)
    return report


def _train(model, train, test, epochs, rank):
    import keras

    base_acc = _accuracy(model, *test)
    config = LoraConfig(rank=rank, alpha=2 * rank, target_layers=TARGETS)
    add_adapter(model, config, name="progressions")
    summary = trainable_summary(model, print_fn=log.info)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(*train, batch_size=64, epochs=epochs, verbose=2)
    tuned_acc = _accuracy(model, *test)
    log.info(
        "next-token accuracy (after 3 tokens of context): base %.3f -> "
        "LoRA-tuned %.3f",
        base_acc,
        tuned_acc,
    )
    return {
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "trainable_percent": round(summary.percent, 4),
        "final_loss": float(history.history["loss"][-1]),
        "base_accuracy": base_acc,
        "tuned_accuracy": tuned_acc,
    }


def _round_trip(model, test_x, output, seed):
    """Saves the adapter, reloads it onto a fresh model, merges it."""
    adapter_dir = os.path.join(output, "adapter")
    save_adapter(model, adapter_dir)
    size = sum(
        os.path.getsize(os.path.join(adapter_dir, f))
        for f in os.listdir(adapter_dir)
    )
    logits = model.predict(test_x, verbose=0)
    fresh = load_adapter(_build(seed, VOCAB, LENGTH), adapter_dir)
    reload_diff = float(np.abs(fresh.predict(test_x, verbose=0) - logits).max())
    plain = merge_and_unload(fresh)
    merge_diff = float(np.abs(plain.predict(test_x, verbose=0) - logits).max())
    return {
        "adapter_checkpoint_bytes": size,
        "reload_max_abs_diff": reload_diff,
        "merged_max_abs_diff": merge_diff,
        "merged_model_class": type(plain).__name__,
    }
