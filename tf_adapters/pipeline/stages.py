"""The article's pipeline as stages: load → prepare → adapt → train →
save → evaluate → export (then `finetune.make_report`).

Each stage is a small function over a `Run` (what the stages before it
made), testable alone; `run_finetune` calls them in order.
"""

import dataclasses
import logging
import os
import shutil
import time

import keras
import numpy as np

from tf_adapters.checkpoint import load_adapter
from tf_adapters.checkpoint import save_adapter
from tf_adapters.core.atomic import atomic_directory
from tf_adapters.data.encoding import pass_permutation
from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.injection.api import add_adapter
from tf_adapters.injection.api import delete_adapter
from tf_adapters.injection.lifecycle import adapter_config
from tf_adapters.methods.adalora import AdaLoraCallback
from tf_adapters.methods.adalora import AdaLoraConfig
from tf_adapters.models.loading import load_base
from tf_adapters.pipeline.fusion import add_fused
from tf_adapters.pipeline.fusion import save_fused
from tf_adapters.pipeline.provenance import records_sha256
from tf_adapters.summary import trainable_summary
from tf_adapters.tasks import get_task
from tf_adapters.tasks.base import eval_length
from tf_adapters.training.checkpointing import NonFiniteLoss
from tf_adapters.training.checkpointing import StopOnNonFinite
from tf_adapters.training.checkpointing import TrainingCheckpoint
from tf_adapters.training.checkpointing import checkpoint_interval
from tf_adapters.training.checkpointing import load_train_state
from tf_adapters.training.checkpointing import plan_epochs
from tf_adapters.training.l2sp import apply_l2sp
from tf_adapters.training.loraplus import loraplus_optimizer
from tf_adapters.training.preemption import StopOnSignal
from tf_adapters.training.preemption import TrainingInterrupted
from tf_adapters.training.progress import keras_progress
from tf_adapters.training.remat import checkpoint_decoder_layers

log = logging.getLogger("tf_adapters.finetune")


@dataclasses.dataclass
class Run:
    """What the stages of one fine-tuning run have made so far."""

    config: object
    strategy: object
    task: object = None
    splits: dict = None
    model: object = None
    trainer: object = None
    truncated: dict = None
    base_metrics: dict = None
    base_validation: dict = None
    records_sha256: str | None = None
    adapter_name: str | None = None
    fused: list = None  # --method fusion: the fused adapters' names
    calibration: dict | None = None  # what `calibrate` fitted
    summary: object = None
    timer: object = None
    history: object = None
    start_step: int = 0  # steps done by the run this one resumes
    initial_epoch: int = 0
    per_epoch: int = 0
    train_seconds: float = 0.0
    checkpoint: str | None = None
    metrics: dict = None
    validation_metrics: dict = None
    saved_model: str | None = None

    @property
    def state_dir(self):
        return os.path.join(self.config.output, "train_state")


class StepTimer(keras.callbacks.Callback):
    """Wall time of each training step (the first includes compilation),
    and the loss Keras reports after it (the epoch's running mean)."""

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)
        loss = (logs or {}).get("loss")
        self.losses.append(None if loss is None else float(loss))

    def on_train_begin(self, logs=None):
        self.times, self.losses = [], []


def load(run):
    """Base model: `config.model` with the task's sequence length."""
    config = run.config
    run.model = load_base(
        config.model, sequence_length=config.sequence_length, dtype=config.dtype
    )


def prepare(run):
    """Data: load, clean and split the task's records, then tokenize and
    encode them for the model (`task.prepare`)."""
    config = run.config
    run.task = get_task(config.task)
    records = run.task.load(config)
    run.records_sha256 = records_sha256(records)
    run.splits = run.task.split(records, config)
    log.info(
        "splits: train %d, validation %d, test %d",
        *(len(run.splits[k]) for k in ("train", "validation", "test")),
    )
    run.truncated = run.task.prepare(run.model, run.splits, config)
    log.info(
        "texts cut to fit: train %d (at %d tokens), test %d (at %d)",
        run.truncated["train"],
        config.sequence_length,
        run.truncated["test"],
        eval_length(run.model, config),
    )


def build_trainer(run):
    """The task's Keras model around the base, every weight built."""
    run.trainer = run.task.build_model(run.model, run.config)
    # Build every weight (a new head too) so counts and saving see them.
    sample = {k: v[:1] for k, v in run.task.test.x.items()}
    run.trainer(sample, training=False)


def evaluate_base(run):
    """The frozen base on the test split (if asked for), before anything
    is adapted; a run whose fresh adapter leaves the base's outputs as
    they are evaluates it later, through the adapted model
    (`evaluate_base_through_adapter`)."""
    if not run.config.evaluate_base or base_through_adapter(run.config):
        return
    run.trainer.compile(
        loss=run.task.loss(), jit_compile=run.config.jit_compile
    )
    _evaluate_base(run)


def evaluate_base_through_adapter(run):
    """The frozen base on the test split, evaluated through the compiled,
    freshly adapted model, whose outputs are still exactly the base's
    (`AdapterConfig.starts_as_base`; full fine-tuning has not changed a
    weight yet): the base's and the adapted model's evaluations then share
    one traced and compiled prediction instead of tracing it twice."""
    if run.config.evaluate_base and base_through_adapter(run.config):
        _evaluate_base(run)


def base_through_adapter(config):
    """Whether `config`'s run evaluates the base through its fresh adapter
    (see `evaluate_base_through_adapter`): full fine-tuning, or a new
    adapter that starts as the base, without gradient checkpointing
    (which wraps the decoder blocks)."""
    if config.remat or config.init_adapter or config.method == "fusion":
        return False
    if config.method == "full":
        return True
    adapter = config.adapter_config()
    return adapter is not None and adapter.starts_as_base()


def _evaluate_base(run):
    log.info("evaluating the base model on the test split")
    run.base_metrics = run.task.evaluate(run.trainer, run.model, run.config)
    run.base_validation = _validation(run)


def adapt(run):
    """Chooses what trains: an adapter, every weight, or a head alone."""
    config, model, trainer = run.config, run.model, run.trainer
    if config.method == "full":
        model.backbone.trainable = True
        for var in trainer.weights:
            var.trainable = True
    elif config.method == "linear_probe":
        model.backbone.trainable = False
    elif config.method == "fusion":
        run.adapter_name, run.fused = add_fused(run)
    elif config.init_adapter:
        run.adapter_name = config.export_name
        load_adapter(model, config.init_adapter, name=run.adapter_name)
        try:
            loaded = adapter_config(model, run.adapter_name)
            config.check_initial_adapter(loaded)
        except ValueError:
            delete_adapter(model, run.adapter_name)
            raise
        log.info("starting from the adapter in %s", config.init_adapter)
    else:
        run.adapter_name = config.export_name
        add_adapter(model, config.adapter_config(), name=run.adapter_name)
    run.summary = trainable_summary(trainer, print_fn=log.info)
    if config.l2sp > 0:
        count = apply_l2sp(trainer, config.l2sp)
        log.info("L2-SP (λ=%g) on %d variables", config.l2sp, count)


def compile_for_training(run):
    """Optimizer, loss and metrics (and gradient checkpointing, before the
    training step is traced)."""
    config = run.config
    if config.remat:
        blocks = checkpoint_decoder_layers(run.model)
        log.info("gradient checkpointing of %d decoder blocks", len(blocks))
    optimizer = keras.optimizers.Adam(
        config.learning_rate_schedule(), **config.ema_options()
    )
    if config.loraplus_lr_ratio is not None:
        optimizer = loraplus_optimizer(optimizer, config.loraplus_lr_ratio)
        log.info("LoRA+: B at %g × the learning rate", config.loraplus_lr_ratio)
    # Compile after choosing what trains, so training sees it.
    run.trainer.compile(
        optimizer=optimizer,
        loss=run.task.loss(),
        weighted_metrics=run.task.compile_metrics(),
        jit_compile=config.jit_compile,
    )


def restore(run, resume_from):
    """An interrupted run's training state (with `config.resume`)."""
    config = run.config
    if config.resume:
        meta = load_train_state(run.trainer, resume_from, config)
        run.start_step = meta["steps_done"]
        log.info(
            "resuming after step %d of %d", meta["steps_done"], config.steps
        )


def train(run):
    """`fit` for `config.steps` steps, checkpointing the training state;
    on SIGTERM / SIGINT, stops after the running step, saves the state and
    raises `TrainingInterrupted`."""
    config = run.config
    every = checkpoint_interval(config.steps, config.checkpoint_every)
    epochs, run.per_epoch = plan_epochs(config.steps, every)
    # A run resumed mid-epoch trains whole epochs from there; the last one
    # ends at `config.steps`, so the count of epochs is the same.
    run.initial_epoch = run.start_step // run.per_epoch
    guard = StopOnNonFinite(run.start_step)
    saver = TrainingCheckpoint(
        run.state_dir, run.per_epoch, config.steps, config, guard
    )
    run.timer = StepTimer()
    stop = StopOnSignal()
    verbose, progress = keras_progress("training", config.steps, run.start_step)
    callbacks = [run.timer, guard, saver, stop, *progress]
    if run.adapter_name is not None:
        adapter = adapter_config(run.model, run.adapter_name)
        if isinstance(adapter, AdaLoraConfig):
            # AdaLoRA allocates its ranks after each step (timed with it).
            callbacks.insert(0, AdaLoraCallback(adapter))
    start = time.perf_counter()
    with stop:
        run.history = run.trainer.fit(
            training_data(run),
            steps_per_epoch=run.per_epoch,
            epochs=epochs,
            initial_epoch=run.initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
        if stop.received is not None and guard.bad_step is None:
            saver.save()  # a second signal stops this write, not the state
    run.train_seconds = time.perf_counter() - start
    if guard.bad_step is not None:
        raise_non_finite(run, guard, saver)
    if stop.received is not None:
        raise_interrupted(run, stop, guard)


def _batch_stream(config):
    """`Encoded.dataset`'s arguments for the training batches."""
    return {
        "shuffle_seed": config.seed,
        "repeat": True,
        "drop_remainder": config.strategy == "tpu",  # static shapes on TPUs
    }


def training_data(run):
    """The batch stream: a function of the seed alone (`Encoded.dataset`),
    so a resumed run sees the same batches after the interrupted one's, and
    every strategy sees the same global batches."""
    config = run.config
    data = run.task.train.dataset(
        config.batch_size,
        **_batch_stream(config),
        dynamic_padding=config.dynamic_padding,
        group_by_length=config.group_by_length,
        # Keras averages a per-token loss over batch × width: the cut
        # batches keep the full-width loss.
        full_width_loss=True,
    ).skip(run.start_step)
    if config.strategy != "default":
        # Each global batch is split across the replicas.
        data = run.strategy.experimental_distribute_dataset(data)
    return data


def raise_non_finite(run, guard, saver):
    last = saver.last_saved_step or run.start_step
    kept = (
        f"the last good checkpoint (after step {last}) is in {run.state_dir}"
        if last
        else "no checkpoint was written before it"
    )
    raise NonFiniteLoss(
        f"The training loss became {guard.bad_loss} at step "
        f"{guard.bad_step}; training stopped and {kept}. Lower "
        "--learning-rate (or check the data) and run again; --resume "
        "continues from the checkpoint with the same options."
    )


def raise_interrupted(run, stop, guard):
    name, steps = stop.received.name, run.config.steps
    raise TrainingInterrupted(
        f"{name} received: training stopped after step {guard.step} of "
        f"{steps}, and the training state is saved in {run.state_dir}. To "
        "continue, run again with the same options and --resume "
        "(`resume=True`).",
        step=guard.step,
        steps=steps,
        signal_name=name,
        state_dir=run.state_dir,
    )


def calibration_records(run):
    """Up to `calibration_size` training records that no training batch
    held: the run's batch stream is replayed for its steps (indices only),
    and the rest are taken in the order of its first shuffled pass."""
    config = run.config
    train = run.task.train
    batches = train.index_batches(
        config.batch_size,
        **_batch_stream(config),
        group_by_length=config.group_by_length and config.dynamic_padding,
    ).take(config.steps)
    seen = np.zeros(len(train.y), bool)
    for rows in batches.as_numpy_iterator():
        seen[rows] = True
    first_pass = pass_permutation(len(train.y), config.seed, 0).numpy()
    rows = [i for i in first_pass if not seen[i]][: config.calibration_size]
    return [run.splits["train"][i] for i in rows]


def calibrate(run):
    """After training, what the task calibrates (classification: a bias
    per label) on training records the run did not train on."""
    run.calibration = None
    if not run.config.calibration_size:
        return
    records = calibration_records(run)
    if records:
        run.calibration = run.task.calibrate(
            run.trainer, run.model, records, run.config
        )
    else:
        run.calibration = {
            "examples": 0,
            "label_bias": None,
            "skipped": "every training example was in a training batch "
            "(steps × batch size cover the training split); give more "
            "data or fewer steps to calibrate, or --calibration-size 0",
        }
    found = run.calibration
    if found is None:
        return
    if found.get("skipped"):
        log.warning("not calibrated: %s", found["skipped"])
    else:
        log.info(
            "calibrated on %d training examples not trained on: label bias %s",
            found["examples"],
            ", ".join(f"{b:+.2f}" for b in found["label_bias"]),
        )


def save(run):
    """Writes what trained: the adapter checkpoint (and a new head), or
    the trained weights; then drops the training state."""
    config = run.config
    os.makedirs(config.output, exist_ok=True)
    weights = os.path.join(config.output, "weights")
    if run.adapter_name is not None:
        run.checkpoint = os.path.join(config.output, "adapter")
        save_adapter(run.model, run.checkpoint)
        if run.fused:
            save_fused(run)
        if getattr(run.trainer, "head", None) is not None:
            # A new head trains with the adapter.
            save_trained_weights(run.trainer, weights, head_only=True)
    else:
        run.checkpoint = save_trained_weights(
            run.trainer, weights, head_only=config.method == "linear_probe"
        )
    # The trained weights are safe on disk: the training state is done.
    shutil.rmtree(run.state_dir, ignore_errors=True)


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


def evaluate(run):
    """The adapted model on the same test split as the base."""
    run.metrics = run.task.evaluate(run.trainer, run.model, run.config)
    run.validation_metrics = _validation(run)


def _validation(run):
    """Metrics on the validation split, if there is one (else `None`):
    what `tf-adapters sweep` chooses by, keeping the test split unseen."""
    if run.task.validation is None:
        return None
    log.info("evaluating on the validation split")
    return run.task.evaluate(
        run.trainer, run.model, run.config, split="validation"
    )


def export(run):
    """A versioned SavedModel for TF Serving (if asked for)."""
    config = run.config
    if config.export:
        run.saved_model = export_saved_model(
            run.task.export_model(run.trainer, run.model),
            config.export_dir,
            config.export_name,
            merge=config.merge,
        )
