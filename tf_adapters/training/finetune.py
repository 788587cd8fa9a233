"""The main job: the article's whole flow on one classification task.

load the base → clean, split, tokenize → zero-shot evaluation → add an
adapter → `fit` → evaluate on the same test split → save the adapter →
export a SavedModel → print a summary table.
"""

import json
import logging
import os
import sys
import time

import keras
import numpy as np

import tf_adapters as tfa
from tf_adapters.data.classification import load_classification_records
from tf_adapters.data.encoding import Encoded
from tf_adapters.data.encoding import encode_templated
from tf_adapters.data.encoding import tokenize
from tf_adapters.data.splits import split_records
from tf_adapters.evaluation.classification import classification_metrics
from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.models.loading import load_base
from tf_adapters.training.label_word_classifier import LabelWordClassifier

log = logging.getLogger("tf_adapters.finetune")


def adapter_config(config):
    if config.method == "lora":
        return tfa.LoraConfig(
            rank=config.rank,
            alpha=config.alpha,
            target_layers=config.target_layers,
        )
    if config.method == "ia3":
        return tfa.IA3Config(target_layers=config.target_layers)
    if config.method == "prompt_tuning":
        return tfa.PromptTuningConfig(
            num_virtual_tokens=config.num_virtual_tokens, seed=config.seed
        )
    return tfa.BottleneckConfig(
        variant=config.method,
        bottleneck_size=config.bottleneck_size,
        target_layers=config.target_layers,
    )


def label_token_ids(tokenizer, labels):
    """The first token of each label word; they must differ."""
    ids = [row[0] for row in tokenize(tokenizer, list(labels))]
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"Labels {list(labels)} start with the same token; choose label "
            "words that the tokenizer starts differently."
        )
    return ids


def _evaluate(classifier, encoded, y, batch_size, num_classes):
    start = time.perf_counter()
    logits = classifier.predict(encoded.x, batch_size=batch_size, verbose=0)
    metrics = classification_metrics(y, np.argmax(logits, -1), num_classes)
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    return metrics


def run_finetune(config):
    """Runs the job described by a `FinetuneConfig`; returns the report."""
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    records, labels = load_classification_records(
        config.data, config.text_field, config.label_field, config.labels
    )
    splits = split_records(
        records, config.test_size, config.validation_size, config.seed
    )
    log.info(
        "splits: train %d, validation %d, test %d",
        *(len(splits[k]) for k in ("train", "validation", "test")),
    )

    model = load_base(config.model, sequence_length=config.sequence_length)
    tokenizer = model.preprocessor.tokenizer
    ids = label_token_ids(tokenizer, labels)

    def encode(split):
        texts = [r["text"] for r in splits[split]]
        y = np.asarray([r["label_index"] for r in splits[split]], "int32")
        enc = encode_templated(
            texts, tokenizer, config.template, config.sequence_length
        )
        return Encoded(enc.x, y, truncated=enc.truncated), y

    train, _ = encode("train")
    test, y_test = encode("test")
    log.info(
        "texts cut to fit %d tokens: train %d, test %d",
        config.sequence_length,
        train.truncated,
        test.truncated,
    )

    classifier = LabelWordClassifier(model.backbone, ids)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    classifier.compile(loss=loss, jit_compile=config.jit_compile)
    log.info("evaluating the base model (zero-shot) on the test split")
    base = _evaluate(classifier, test, y_test, config.batch_size, len(labels))

    tfa.add_adapter(model, adapter_config(config), name=config.export_name)
    summary = tfa.trainable_summary(model, print_fn=log.info)
    # Compile after adding the adapter, so training sees it.
    classifier.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
    )
    train_start = time.perf_counter()
    history = classifier.fit(
        train.dataset(config.batch_size, shuffle_seed=config.seed, repeat=True),
        steps_per_epoch=config.steps,
        epochs=1,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    train_seconds = time.perf_counter() - train_start
    adapted = _evaluate(
        classifier, test, y_test, config.batch_size, len(labels)
    )

    os.makedirs(config.output, exist_ok=True)
    adapter_dir = os.path.join(config.output, "adapter")
    tfa.save_adapter(model, adapter_dir)
    export_path = None
    if config.export:
        export_path = export_saved_model(
            classifier,
            config.export_dir,
            config.export_name,
            merge=config.merge,
        )

    report = {
        "model": config.model,
        "data": config.data,
        "labels": labels,
        "method": config.method,
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "trainable_percent": round(summary.percent, 4),
        "train_examples_seen": config.steps * config.batch_size,
        "steps": config.steps,
        "train_seconds": round(train_seconds, 1),
        "final_train_loss": float(history.history["loss"][-1]),
        "test_examples": len(y_test),
        "base": base,
        "adapted": adapted,
        "adapter_dir": adapter_dir,
        "saved_model": export_path,
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    with open(os.path.join(config.output, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(summary_table(report))
    return report


def summary_table(report):
    rows = [
        ("metric", "base (zero-shot)", f"{report['method']} adapter"),
        ("---", "---:", "---:"),
    ]
    for key in ("accuracy", "precision", "recall", "f1"):
        rows.append(
            (
                key,
                f"{report['base'][key]:.3f}",
                f"{report['adapted'][key]:.3f}",
            )
        )
    rows.append(("trainable params", "0", f"{report['trainable_params']:,}"))
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.append(
        f"\n{report['test_examples']} test examples; {report['steps']} steps "
        f"({report['train_examples_seen']} examples) in "
        f"{report['train_seconds']} s; total {report['total_seconds']} s.\n"
        f"adapter: {report['adapter_dir']}   SavedModel: "
        f"{report['saved_model']}"
    )
    return "\n".join(lines)
