"""The main job: the article's whole flow on one task.

load the base → clean, split, tokenize → evaluate the base → add an
adapter (or unfreeze for full fine-tuning) → `fit` → save what was trained
→ evaluate on the same test split → export a SavedModel → print a table.
Each step is a stage in `pipeline.stages`.
"""

import dataclasses
import json
import logging
import os
import resource
import shutil
import tempfile
import time

import keras
import numpy as np

from tf_adapters.core.atomic import atomic_write_text
from tf_adapters.core.locking import folder_lock
from tf_adapters.methods.adalora.truncate import adalora_ranks
from tf_adapters.pipeline import provenance
from tf_adapters.pipeline import stages
from tf_adapters.tasks.base import eval_length
from tf_adapters.training.distribution import is_chief
from tf_adapters.training.distribution import make_strategy

log = logging.getLogger("tf_adapters.finetune")


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _directory_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(path)
        for f in files
    )


def run_finetune(config):
    """Runs the job described by a `FinetuneConfig`; returns the report.

    Loads the base, prepares the data, evaluates the base, adds the adapter
    (or unfreezes for full fine-tuning), trains, evaluates on the same test
    split, saves what trained under `config.output`, exports a SavedModel
    (if `config.export`), writes `config.output/report.json` and prints a
    table comparing base and adapted metrics.

    The model, adapters, optimizer and metrics are built in the scope of
    the `tf.distribute` strategy `config.strategy` names; with several
    workers only the chief writes the outputs.

    On SIGTERM or SIGINT during training it finishes the running step,
    saves the training state (`config.output/train_state`) and raises
    `tfa.TrainingInterrupted`; the same config with `resume=True` then
    ends with the weights an uninterrupted run has. One run at a time
    uses `config.output`: its lock file `.tf_adapters.lock` records the
    owner's pid, host and start time, and a lock left by a run that is no
    longer running is taken over.

    Args:
        config: `tfa.FinetuneConfig`. What to train, on what, and where
            the results go.

    Raises:
        tfa.TrainingInterrupted: SIGTERM or SIGINT stopped training; the
            training state is saved and `resume=True` continues.
        FileExistsError: another running process uses `config.output`
            (the message names it).
        tfa.SaveError: a save failed because the disk is full; what was
            saved before is intact.

    Returns:
        dict. The report, as written to `report.json`: the options, the
        parameter counts (`"trainable_params"`, `"total_params"`), timings,
        the loss curve, the test metrics before and after training
        (`"base"`, `"adapted"`: dicts keyed by the task's metric names, such
        as `"accuracy"`), and the paths of the saved adapter
        (`"checkpoint"`) and of the SavedModel version (`"saved_model"`).

    Example (a tiny GPT-2 saved as a preset, two training steps; with no
    options `FinetuneConfig()` runs the main job on the embedded model):
    >>> import contextlib, io, json, os, tempfile, keras_hub
    >>> import tf_adapters as tfa
    >>> out = tempfile.mkdtemp()
    >>> vocab = {"<|endoftext|>": 0, "a": 1, "t": 2, "Ġ": 3, "Ġa": 4,
    ...          "Ġt": 5, "at": 6}
    >>> tokenizer = keras_hub.models.GPT2Tokenizer(
    ...     vocabulary=vocab, merges=["Ġ a", "Ġ t", "a t"])
    >>> keras_hub.models.GPT2CausalLM(
    ...     keras_hub.models.GPT2Backbone(
    ...         vocabulary_size=7, num_layers=1, num_heads=2, hidden_dim=8,
    ...         intermediate_dim=16, max_sequence_length=32),
    ...     preprocessor=keras_hub.models.GPT2CausalLMPreprocessor(tokenizer),
    ... ).save_to_preset(os.path.join(out, "tiny_gpt2"))
    >>> rows = [{"text": " at" * (1 + i % 4) + " t" * (i // 4),
    ...          "label": "at"[i % 2]} for i in range(16)]  # 16 texts
    >>> with open(os.path.join(out, "data.jsonl"), "w") as f:
    ...     _ = f.write("\\n".join(json.dumps(row) for row in rows))
    >>> config = tfa.FinetuneConfig(
    ...     model=os.path.join(out, "tiny_gpt2"),
    ...     data=os.path.join(out, "data.jsonl"), labels=["a", "t"],
    ...     template="{text}", steps=2, batch_size=4, sequence_length=8,
    ...     test_size=4, jit_compile=False, export=False,
    ...     output=os.path.join(out, "run"))
    >>> with contextlib.redirect_stdout(io.StringIO()):  # progress, table
    ...     report = tfa.run_finetune(config)
    >>> sorted(os.listdir(os.path.join(out, "run")))
    ['adapter', 'report.json']
    >>> accuracy = report["adapted"]["accuracy"]
    >>> report["method"], report["steps"], 0 <= accuracy <= 1
    ('lora', 2, True)
    """
    strategy = make_strategy(config.strategy)
    state_dir = os.path.join(config.output, "train_state")
    with strategy.scope():
        if is_chief(strategy):
            # One run per output folder; released however the run ends.
            with folder_lock(config.output):
                if config.restart:
                    move_aside(state_dir)
                return _run(config, strategy, state_dir)
        # Other workers train in step with the chief and write nothing the
        # user keeps; `--resume` reads the chief's training state (the
        # output directory must be on a file system all workers share).
        scratch = tempfile.mkdtemp(prefix="tf_adapters_worker_")
        try:
            worker_config = dataclasses.replace(
                config,
                output=os.path.join(scratch, "run"),
                export_dir=os.path.join(scratch, "saved_models"),
            )
            return _run(worker_config, strategy, state_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _run(config, strategy, resume_from):
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    run = stages.Run(config, strategy)
    phases = {}
    # A phase name may come twice: its times add up. The base is evaluated
    # before `adapt` or after `compile` (whichever applies; the other is a
    # no-op), and restoring an interrupted run counts as compiling.
    for name, stage in (
        ("load", stages.load),
        ("data", stages.prepare),
        ("build", stages.build_trainer),
        ("base_evaluation", stages.evaluate_base),
        ("adapt", stages.adapt),
        ("compile", stages.compile_for_training),
        ("base_evaluation", stages.evaluate_base_through_adapter),
        ("compile", lambda run: stages.restore(run, resume_from)),
        ("train", stages.train),
        ("calibration", stages.calibrate),
        ("save", stages.save),
        ("evaluation", stages.evaluate),
        ("export", stages.export),
    ):
        began = time.perf_counter()
        stage(run)
        seconds = time.perf_counter() - began + phases.get(name, 0.0)
        phases[name] = round(seconds, 1)
    report = make_report(run, time.perf_counter() - start, phases)
    atomic_write_text(
        os.path.join(config.output, "report.json"), json.dumps(report, indent=2)
    )
    print(summary_table(report, run.task.metrics))
    return report


def make_report(run, total_seconds, phases=None):
    """The run's `report.json`: options, parameters, timings (`phases`:
    seconds per stage, the first step's tracing and XLA compilation
    inside `train`), metrics."""
    config, timer, summary = run.config, run.timer, run.summary
    steps = timer.times[1:] or timer.times
    report = {
        "task": config.task,
        "model": config.model,
        "data": config.data,
        "method": config.method,
        "share_weights": bool(
            getattr(config.adapter_config(), "share_weights", False)
        ),
        "l2sp": config.l2sp,
        "remat": config.remat,
        "loraplus_lr_ratio": config.loraplus_lr_ratio,
        # --method fusion: the fused adapters, by name and folder.
        "fused": dict(zip(run.fused, config.fuse, strict=True))
        if run.fused
        else None,
        "metric": run.task.metrics[0],
        "higher_is_better": run.task.higher_is_better,
        "labels": getattr(run.task, "labels", None),
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "trainable_percent": round(summary.percent, 4),
        "train_examples_seen": config.steps * config.batch_size,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "sequence_length": config.sequence_length,
        "eval_sequence_length": eval_length(run.model, config),
        "learning_rate": config.effective_learning_rate(),
        "seed": config.seed,
        "split_seed": config.split_seed,
        "strategy": config.strategy,
        "replicas": run.strategy.num_replicas_in_sync,
        "loss_curve": timer.losses,
        "train_seconds": round(run.train_seconds, 1),
        "first_step_seconds": round(timer.times[0], 2) if steps else None,
        "step_seconds_median": round(float(np.median(steps)), 3)
        if steps
        else None,
        "peak_rss_mb": round(peak_rss_mb()),
        "final_train_loss": float(run.history.history["loss"][-1])
        if run.history.history.get("loss")
        else None,
        "resumed_from_step": run.start_step if config.resume else None,
        "steps_run_here": len(timer.times),
        "test_examples": len(run.splits["test"]),
        # Texts cut to fit (the text's end is cut, never the template):
        # training texts at `sequence_length`, test texts at
        # `eval_sequence_length`.
        "truncated": run.truncated,
        "base": run.base_metrics,
        "adapted": run.metrics,
        # With --validation-size: the same metrics on the validation split
        # (what `tf-adapters sweep` chooses by), else `None`.
        "validation": run.validation_metrics,
        "base_validation": run.base_validation,
        # Classification: the bias per label fitted after training on
        # training examples no batch held (`stages.calibrate`; `tf-adapters
        # evaluate` applies it again), else `None`.
        "calibration": run.calibration,
        # AdaLoRA: each layer's rank after training (else `None`).
        "adalora_ranks": adalora_ranks(run.model),
        "checkpoint": run.checkpoint,
        "checkpoint_bytes": _directory_bytes(run.checkpoint),
        "saved_model": run.saved_model,
        "total_seconds": round(total_seconds, 1),
        "phases": phases,
        # Every option, the data's hash, versions and machine.
        "reproduce": provenance.reproduce(
            config,
            run.records_sha256,
            command="tf-adapters finetune --config FILE (FILE: `options` "
            "as JSON or YAML)",
        ),
    }
    return report


def summary_table(report, metrics):
    base, adapted = report["base"], report["adapted"]
    rows = [
        ("metric", "base", f"{report['method']}"),
        ("---", "---:", "---:"),
    ]
    for key in metrics:
        before = f"{base[key]:.3f}" if base else "-"
        rows.append((key, before, f"{adapted[key]:.3f}"))
    rows.append(("trainable params", "0", f"{report['trainable_params']:,}"))
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.append(
        f"\n{report['test_examples']} test examples; {report['steps']} steps "
        f"({report['train_examples_seen']} examples) in "
        f"{report['train_seconds']} s; total {report['total_seconds']} s"
        f"{_phase_text(report.get('phases'), report.get('first_step_seconds'))}"
        ".\n"
        f"checkpoint: {report['checkpoint']}   SavedModel: "
        f"{report['saved_model']}"
    )
    return "\n".join(lines)


def _phase_text(phases, first_step):
    """` (load 9.1 s, data 2.0 s, ...)`: the phases that took 0.1 s or
    more, the first step's share of training named."""
    if not phases:
        return ""
    parts = []
    for name, seconds in phases.items():
        if seconds < 0.1:
            continue
        text = f"{name.replace('_', ' ')} {seconds:g} s"
        if name == "train" and first_step is not None:
            text += f" (first step {first_step:g} s)"
        parts.append(text)
    return " (" + ", ".join(parts) + ")"


def move_aside(state_dir):
    """Renames a training state out of the way (`--restart`); returns the
    new path, or `None` if there was none. Nothing is deleted."""
    if not os.path.exists(state_dir):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    aside, i = f"{state_dir}.aside-{stamp}", 2
    while os.path.exists(aside):
        aside, i = f"{state_dir}.aside-{stamp}-{i}", i + 1
    os.rename(state_dir, aside)
    log.info("--restart: the previous training state is kept in %s", aside)
    return aside
