"""`tf-adapters evaluate`: a saved adapter (or weights) on a test split."""

import json
import logging
import os

import keras
import numpy as np

from tf_adapters.core.npz_file import load_npz
from tf_adapters.pipeline import stages
from tf_adapters.pipeline.fusion import load_with_fused
from tf_adapters.training.checkpointing import with_old_eval_length

log = logging.getLogger("tf_adapters.evaluate")

# The options that decide what is scored and how: a run's test split
# (data, sizes, split seed), its prompt (template, labels, head) and its
# model. Method options are not among them: a saved adapter carries its own.
SCORING_OPTIONS = (
    "model",
    "task",
    "data",
    "stream",
    "text_field",
    "label_field",
    "prompt_field",
    "response_field",
    "source_field",
    "target_field",
    "source_language",
    "target_language",
    "head",
    "labels",
    "template",
    "sequence_length",
    "eval_sequence_length",
    "test_size",
    "validation_size",
    "max_new_tokens",
    "split_seed",
)


def run_options(saved):
    """The scoring options of the `finetune` run that wrote `saved` (its
    `adapter` or `weights` folder), read from the run's `report.json`
    beside it; `{}` when there is none (an adapter saved by hand).

    `tf-adapters evaluate` starts from these, so an adapter trained with
    another task, data, template or sequence length is scored as it was
    trained; flags and `--config` override them.
    """
    report_file, report = _run_report(saved)
    if report is None:
        return {}
    try:
        options = report["reproduce"]["options"]
    except (KeyError, TypeError) as error:
        raise _unreadable(report_file, error) from None
    if not isinstance(options, dict):
        raise ValueError(
            f"{report_file}: `reproduce.options` is not a mapping of options."
        )
    options = {k: options[k] for k in SCORING_OPTIONS if k in options}
    options = with_old_eval_length(options)
    log.info(
        "Options of the run in %s (flags override them): %s",
        report_file,
        ", ".join(
            f"{k}={options[k]!r}" for k in ("task", "data") if k in options
        ),
    )
    return options


def run_label_bias(saved):
    """The label bias that the `finetune` run that wrote `saved` calibrated
    (its `report.json`'s `calibration`), or `None` (none calibrated, or no
    report: an adapter saved by hand)."""
    report_file, report = _run_report(saved)
    found = (report or {}).get("calibration") or {}
    bias = found.get("label_bias")
    if bias is None:
        return None
    if not isinstance(bias, list) or not all(
        isinstance(b, (int, float)) and np.isfinite(b) for b in bias
    ):
        raise ValueError(
            f"{report_file}: `calibration.label_bias` must be a list of "
            f"finite numbers; it holds {bias!r}. Move the report away or "
            "train again."
        )
    return [float(b) for b in bias]


def _run_report(saved):
    """`(path, report)`: the `report.json` beside `saved`, or `(path,
    None)` where there is none."""
    report_file = os.path.join(
        os.path.dirname(os.path.normpath(saved)), "report.json"
    )
    if not os.path.isfile(report_file):
        return report_file, None
    try:
        with open(report_file) as f:
            report = json.load(f)
    except (OSError, ValueError) as error:
        raise _unreadable(report_file, error) from None
    if not isinstance(report, dict):
        raise _unreadable(report_file, "not a mapping")
    return report_file, report


def _unreadable(report_file, why):
    return ValueError(
        f"{report_file} cannot be read as a finetune report ({why}); "
        "move it away or pass the options as flags."
    )


def load_trained_weights(trainer, path):
    """Loads what `stages.save_trained_weights` wrote into `trainer`: the
    backbone's weights and/or a head's (names, shapes and values checked
    first)."""
    backbone_file = os.path.join(path, "backbone.weights.h5")
    head_file = os.path.join(path, "head.weights.npz")
    if not os.path.isfile(backbone_file) and not os.path.isfile(head_file):
        raise FileNotFoundError(
            f"{path} holds neither backbone.weights.h5 nor head.weights.npz; "
            "pass the `weights` folder that finetune wrote."
        )
    if os.path.isfile(backbone_file):
        trainer.backbone.load_weights(backbone_file)
    if not os.path.isfile(head_file):
        return path
    head = getattr(trainer, "head", None)
    if head is None:
        raise ValueError(
            f"{head_file} holds a classification head; evaluate it with "
            "--task classification --head linear."
        )
    arrays = load_npz(
        head_file,
        None,
        "classification head weights",
        "Train again to write it, or copy the weights folder again",
    )
    variables = {v.name: v for v in head.weights}
    if sorted(arrays) != sorted(variables):
        raise ValueError(
            f"{head_file} holds {sorted(arrays)}; the head has "
            f"{sorted(variables)}."
        )
    for key, value in arrays.items():
        if tuple(value.shape) != tuple(variables[key].shape):
            raise ValueError(
                f"{head_file}: {key!r} has shape {value.shape}, the head "
                f"expects {tuple(variables[key].shape)} (another label "
                "set or base model?)."
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{head_file}: {key!r} is not finite.")
    for key, value in arrays.items():
        variables[key].assign(value)
    return path


def run_evaluate(config, adapter=None, weights=None, label_bias=None):
    """Evaluates the base model plus `adapter` (a checkpoint folder) or
    `weights` on the test split `config` describes (the same split
    `finetune` holds out for the same data, sizes and seed). `label_bias`
    (classification with label words): the bias per label the run
    calibrated (`run_label_bias`), set before scoring; a linear head's
    bias already holds it.

    Returns the metrics dict.
    """
    keras.utils.set_random_seed(config.seed)
    run = stages.Run(config, strategy=None)
    stages.load(run)
    stages.prepare(run)
    if adapter is not None:
        load_with_fused(run.model, adapter)
    # Every weight (e.g. a new head) is built before saved values load.
    stages.build_trainer(run)
    if label_bias is not None and hasattr(run.trainer, "label_bias"):
        if len(label_bias) != run.trainer.label_bias.shape[0]:
            raise ValueError(
                f"`label_bias` has {len(label_bias)} values for "
                f"{run.trainer.label_bias.shape[0]} labels; the run's "
                "report.json was written for other labels."
            )
        run.trainer.label_bias.assign(np.asarray(label_bias, "float32"))
        log.info("label bias calibrated by the run: %s", label_bias)
    if weights is not None:
        load_trained_weights(run.trainer, weights)
    elif config.head == "linear" and config.task == "classification":
        raise ValueError(
            "A linear head is trained, not given: pass --weights (the "
            "`weights` folder of a linear_probe/full run)."
        )
    run.trainer.compile(loss=run.task.loss(), jit_compile=config.jit_compile)
    stages.evaluate(run)
    print(json.dumps(run.metrics, indent=2))
    return run.metrics
