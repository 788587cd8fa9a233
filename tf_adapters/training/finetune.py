"""The main job: the article's whole flow on one task.

load the base → clean, split, tokenize → evaluate the base → add an
adapter (or unfreeze for full fine-tuning) → `fit` → evaluate on the same
test split → save what was trained → export a SavedModel → print a table.
"""

import dataclasses
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time

import keras
import numpy as np

import tf_adapters as tfa
from tf_adapters.core.atomic import atomic_directory
from tf_adapters.core.atomic import atomic_write_text
from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.models.loading import load_base
from tf_adapters.tasks import get_task
from tf_adapters.training.checkpointing import NonFiniteLoss
from tf_adapters.training.checkpointing import StopOnNonFinite
from tf_adapters.training.checkpointing import TrainingCheckpoint
from tf_adapters.training.checkpointing import checkpoint_interval
from tf_adapters.training.checkpointing import load_train_state
from tf_adapters.training.checkpointing import plan_epochs
from tf_adapters.training.distribution import is_chief
from tf_adapters.training.distribution import make_strategy
from tf_adapters.training.l2sp import apply_l2sp

log = logging.getLogger("tf_adapters.finetune")


def adapter_config(config):
    """The adapter config a `FinetuneConfig` asks for."""
    if config.method == "lora":
        return tfa.LoraConfig(
            rank=config.rank,
            alpha=config.alpha,
            target_layers=config.target_layers,
            share_weights=config.share_weights,
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
        share_weights=config.share_weights,
    )


class StepTimer(keras.callbacks.Callback):
    """Wall time of each training step (the first includes compilation),
    and the loss Keras reports after it (the epoch's running mean)."""

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)
        loss = (logs or {}).get("loss")
        self.losses.append(None if loss is None else float(loss))

    def on_train_begin(self, logs=None):
        self.times, self.losses = [], []


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


def save_trained_weights(trainer, path, head_only=False):
    """Saves what full fine-tuning, a linear probe or a new head trained,
    atomically: `backbone.weights.h5` (Keras's weights format, keyed by
    attribute path, so a freshly built backbone loads it; the optimizer's
    state is not included) unless `head_only`, plus `head.weights.npz` when
    the model has a head."""
    head = getattr(trainer, "head", None)
    with atomic_directory(path) as tmp:
        if not head_only:
            trainer.backbone.save_weights(
                os.path.join(tmp, "backbone.weights.h5")
            )
        if head is not None:
            np.savez(
                os.path.join(tmp, "head.weights.npz"),
                **{v.name: np.asarray(v) for v in head.weights},
            )
    return path


def _set_up_training(config, model, trainer):
    """Chooses what trains; returns (adapter name or None, summary)."""
    if config.method == "full":
        model.backbone.trainable = True
        for var in trainer.weights:
            var.trainable = True
        name = None
    elif config.method == "linear_probe":
        model.backbone.trainable = False
        name = None
    else:
        name = config.export_name
        tfa.add_adapter(model, adapter_config(config), name=name)
    summary = tfa.trainable_summary(trainer, print_fn=log.info)
    return name, summary


def run_finetune(config):
    """Runs the job described by a `FinetuneConfig`; returns the report.

    The model, adapters, optimizer and metrics are built in the scope of
    the `tf.distribute` strategy `config.strategy` names; with several
    workers only the chief writes the outputs.
    """
    strategy = make_strategy(config.strategy)
    state_dir = os.path.join(config.output, "train_state")
    with strategy.scope():
        if is_chief(strategy):
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
    task = get_task(config.task)
    records = task.load(config)
    splits = task.split(records, config)
    log.info(
        "splits: train %d, validation %d, test %d",
        *(len(splits[k]) for k in ("train", "validation", "test")),
    )

    model = load_base(config.model, sequence_length=config.sequence_length)
    truncated = task.prepare(model, splits, config)
    log.info(
        "texts cut to fit %d tokens: train %d, test %d",
        config.sequence_length,
        truncated["train"],
        truncated["test"],
    )
    trainer = task.build_model(model, config)
    # Build every weight (a new head too) so counts and saving see them.
    trainer({k: v[:1] for k, v in task.test.x.items()}, training=False)
    base = None
    if config.evaluate_base:
        trainer.compile(loss=task.loss(), jit_compile=config.jit_compile)
        log.info("evaluating the base model on the test split")
        base = task.evaluate(trainer, model, config)

    adapter_name, summary = _set_up_training(config, model, trainer)
    penalized = 0
    if config.l2sp > 0:
        penalized = apply_l2sp(trainer, config.l2sp)
        log.info("L2-SP (λ=%g) on %d variables", config.l2sp, penalized)
    # Compile after choosing what trains, so training sees it.
    trainer.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=task.loss(),
        weighted_metrics=task.compile_metrics(),
        jit_compile=config.jit_compile,
    )
    every = checkpoint_interval(config.steps, config.checkpoint_every)
    epochs, per_epoch = plan_epochs(config.steps, every)
    state_dir = os.path.join(config.output, "train_state")
    initial_epoch = 0
    if config.resume:
        meta = load_train_state(trainer, resume_from, config)
        initial_epoch = meta["epoch"]
        log.info(
            "resuming after step %d of %d", meta["steps_done"], config.steps
        )
    guard = StopOnNonFinite(per_epoch)
    saver = TrainingCheckpoint(state_dir, per_epoch, epochs, config, guard)
    timer = StepTimer()
    drop = config.strategy == "tpu"  # static shapes on TPUs
    # The batch stream depends only on the seed (`Encoded.dataset`): a
    # resumed run skips what the interrupted one consumed and sees the same
    # batches after it, and every strategy sees the same global batches.
    train_data = task.train.dataset(
        config.batch_size,
        shuffle_seed=config.seed,
        repeat=True,
        drop_remainder=drop,
    ).skip(initial_epoch * per_epoch)
    if config.strategy != "default":
        # Each global batch is split across the replicas.
        train_data = strategy.experimental_distribute_dataset(train_data)
    train_start = time.perf_counter()
    history = trainer.fit(
        train_data,
        steps_per_epoch=per_epoch,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=[timer, guard, saver],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    train_seconds = time.perf_counter() - train_start
    if guard.bad_step is not None:
        last = saver.last_saved_step or initial_epoch * per_epoch
        kept = (
            f"the last good checkpoint (after step {last}) is in {state_dir}"
            if last
            else "no checkpoint was written before it"
        )
        raise NonFiniteLoss(
            f"The training loss became {guard.bad_loss} at step "
            f"{guard.bad_step}; training stopped and {kept}. Lower "
            "--learning-rate (or check the data) and run again; --resume "
            "continues from the checkpoint with the same options."
        )
    os.makedirs(config.output, exist_ok=True)
    if adapter_name is not None:
        checkpoint = os.path.join(config.output, "adapter")
        tfa.save_adapter(model, checkpoint)
        head = getattr(trainer, "head", None)
        if head is not None:  # a new head trains with the adapter
            save_trained_weights(
                trainer, os.path.join(config.output, "weights"), True
            )
    else:
        checkpoint = save_trained_weights(
            trainer,
            os.path.join(config.output, "weights"),
            head_only=config.method == "linear_probe",
        )
    # The trained weights are safe on disk: the training state is done.
    shutil.rmtree(state_dir, ignore_errors=True)
    adapted = task.evaluate(trainer, model, config)
    export_path = None
    if config.export:
        export_path = export_saved_model(
            task.export_model(trainer, model),
            config.export_dir,
            config.export_name,
            merge=config.merge,
        )

    steps = timer.times[1:] or timer.times
    report = {
        "task": config.task,
        "model": config.model,
        "data": config.data,
        "method": config.method,
        "share_weights": config.share_weights,
        "l2sp": config.l2sp,
        "metric": task.metrics[0],
        "higher_is_better": task.higher_is_better,
        "labels": getattr(task, "labels", None),
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "trainable_percent": round(summary.percent, 4),
        "train_examples_seen": config.steps * config.batch_size,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "sequence_length": config.sequence_length,
        "seed": config.seed,
        "strategy": config.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "loss_curve": timer.losses,
        "train_seconds": round(train_seconds, 1),
        "first_step_seconds": round(timer.times[0], 2) if steps else None,
        "step_seconds_median": round(float(np.median(steps)), 3)
        if steps
        else None,
        "peak_rss_mb": round(peak_rss_mb()),
        "final_train_loss": float(history.history["loss"][-1])
        if history.history.get("loss")
        else None,
        "resumed_from_step": initial_epoch * per_epoch
        if config.resume
        else None,
        "steps_run_here": len(timer.times),
        "test_examples": len(splits["test"]),
        # Texts cut to fit `sequence_length` (the text's end is cut, never
        # the template).
        "truncated": truncated,
        "base": base,
        "adapted": adapted,
        "checkpoint": checkpoint,
        "checkpoint_bytes": _directory_bytes(checkpoint),
        "saved_model": export_path,
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_text(
        os.path.join(config.output, "report.json"), json.dumps(report, indent=2)
    )
    print(summary_table(report, task.metrics))
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
        f"{report['train_seconds']} s; total {report['total_seconds']} s.\n"
        f"checkpoint: {report['checkpoint']}   SavedModel: "
        f"{report['saved_model']}"
    )
    return "\n".join(lines)
