"""Keras's TensorFlow trainer: one trace of the first step, multi-worker
`fit`, and dropping compiled functions.

Everything here overrides or resets a private part of
`keras/src/backend/tensorflow/trainer.py` and `keras/src/trainers/
trainer.py`, checked on Keras 3.15-3.16 (dev) with keras-hub 0.32-0.33
(dev).
"""

import keras
import tensorflow as tf

from tf_adapters.compat.versions import KERAS

# Data Keras can read again from the start after a batch is taken out.
_REWINDABLE = {"TFDatasetAdapter", "ArrayDataAdapter"}

# Keras versions whose TensorFlow trainer cannot `fit` under
# `MultiWorkerMirroredStrategy` (tensorflow/tensorflow#72388): 3.15 and the
# 3.16 development release still fail without the fix.
# tests/training/test_distribution.py shows whether a newer one needs it.
NEEDS_MULTI_WORKER_FIX = KERAS[:2] <= (3, 16)


def tensorflow_trainer_class():
    """Keras's TensorFlow trainer class (the one `keras.Model` mixes in).

    Keras 3.15 names it `TensorFlowTrainer`, 3.16 (dev) `Trainer`, both in
    `keras.src.backend.tensorflow.trainer`; found by module, not by name.
    Public alternative: none (tests patch its steps to count traces).
    """
    module = "keras.src.backend.tensorflow.trainer"
    return next(c for c in keras.Model.__mro__ if c.__module__ == module)


def reset_compiled_functions(model):
    """Makes `fit` / `evaluate` / `predict` / `generate` trace again.

    Relies on Keras caching its compiled step functions in the public-looking
    but undocumented attributes `train_function`, `test_function`,
    `predict_function` (Keras 3.0+) and keras-hub's `generate_function`
    (0.1+). Public alternative: `model.compile(...)` again, which also
    resets the optimizer and metrics.
    """
    for attr in (
        "train_function",
        "test_function",
        "predict_function",
        "generate_function",
    ):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)


def trace_predict_once(model, dataset):
    """Traces `model.predict`'s step once, for any batch of `dataset`.

    Keras's prediction is a `tf.function(reduce_retracing=True)` called
    with each batch's tensors: it traces for the first batch's shape, and
    again, shape-free, at the next shape. Batches cut to their longest row
    all differ in length, so this traces it once, up front, for
    `dataset.element_spec` (sequence length left free). A no-op under a
    `tf.distribute` strategy (its batches are distributed values) or when
    `model` runs eagerly. With `steps_per_execution > 1` Keras calls the
    function with several batches at once; it is then traced as before.

    Relies on Keras building `model.predict_function` in the public-looking
    `make_predict_function()` and calling it with a list of
    `steps_per_execution` batches as the dataset yields them (Keras 3.0+,
    `keras/src/backend/tensorflow/trainer.py`). Public alternative: none;
    without it `predict` traces twice.
    """
    if tf.distribute.has_strategy() or model.run_eagerly:
        return
    model.make_predict_function()
    function = model.predict_function
    if hasattr(function, "get_concrete_function"):
        function.get_concrete_function([dataset.element_spec])


def is_multi_worker(strategy):
    """Whether `strategy` all-reduces across worker processes.

    Relies on `extended._in_multi_worker_mode()` of
    `MultiWorkerMirroredStrategy` (TF 2.4+). Public alternative: parse
    `TF_CONFIG` ourselves.
    """
    extended = getattr(strategy, "extended", None)
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


class SingleTraceBuildMixin:
    """`fit` / `evaluate` make the optimizer's and the metrics' variables
    before the first step is traced, so that step is traced once, not twice
    (tf.function traces again a step that made variables; tens of seconds
    for a 135M model).

    Keras builds them from one batch's shapes under a strategy only; with
    none it defers to the first trace. This override of
    `Trainer._maybe_symbolic_build` does the same with no strategy, calling
    Keras's own `_symbolic_build`; it reads `_distribute_strategy` (set only
    when the model was made in a strategy scope) and the epoch iterator's
    `data_adapter`. Public alternative: `optimizer.build(...)` before `fit`,
    which is not enough (the compiled metrics still force a second trace).
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is not None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        if iterator is not None:
            adapter = type(getattr(iterator, "data_adapter", None)).__name__
            if adapter not in _REWINDABLE:
                return None  # a generator: no batch can be spared
            for _, _, batches in iterator:  # `fit` rewinds it afterwards
                try:
                    data_batch = next(batches)
                except (StopIteration, tf.errors.OutOfRangeError):
                    return None  # no data: Keras says so in its own words
                break
        if data_batch is not None and not _build_from_one_row(self, data_batch):
            self._symbolic_build(data_batch=data_batch)
        return None


def _build_from_one_row(model, data_batch):
    """Builds `model`'s compiled loss, metrics and optimizer as Keras's
    `Trainer._symbolic_build` does, but takes the model's output spec from
    an eager call on the batch's first row instead of a symbolic trace of
    the whole model (`backend.compute_output_spec`: about 6 s of the
    embedded model's first step on 2 cores; the eager row takes a fraction
    of a second). Returns `False`, having done nothing, where a layer of
    `model` is not built yet (Keras's own build then makes it).

    Mirrors `keras/src/trainers/trainer.py` (Keras 3.15-3.16 dev): reads
    `_flatten_layers`, `_compile_metrics`, `_compile_loss`,
    `_compute_loss` and `_post_build`.
    """
    from keras.src import backend

    metrics, loss = model._compile_metrics, model._compile_loss
    optimizer = model.optimizer
    unbuilt = [
        part
        for part in (metrics, loss, optimizer)
        if part is not None and not part.built
    ]
    if not unbuilt:
        # Keras's build would not call the model either.
        _post_build(model)
        return True
    if not all(layer.built for layer in model._flatten_layers()):
        return False
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data_batch)
    try:
        row = tf.nest.map_structure(lambda t: t[:1], x)
        y_pred = tf.nest.map_structure(
            lambda t: keras.KerasTensor(
                (None, *t.shape[1:]), keras.backend.standardize_dtype(t.dtype)
            ),
            model(row, training=False),
        )
    except (TypeError, ValueError, AttributeError):
        return False  # e.g. sparse inputs: Keras's symbolic build instead

    def symbolic(value):
        if value is None:
            return None
        return keras.KerasTensor(
            value.shape, keras.backend.standardize_dtype(value.dtype)
        )

    x, y, sample_weight = tf.nest.map_structure(symbolic, (x, y, sample_weight))
    if metrics is not None and not metrics.built:
        backend.compute_output_spec(
            model.compute_metrics, x, y, y_pred, sample_weight=sample_weight
        )
    if loss is not None and not loss.built:
        backend.compute_output_spec(
            model._compute_loss,
            x,
            y,
            y_pred,
            sample_weight=sample_weight,
            training=False,
        )
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    _post_build(model)
    return True


def _post_build(model):
    post_build = getattr(model, "_post_build", None)  # a no-op in TF's
    if post_build is not None:
        post_build()


def _vector(logs):
    return {k: tf.reshape(v, [1]) for k, v in logs.items()}


class MultiWorkerFitMixin:
    """Lets Keras's `fit` / `evaluate` run under
    `MultiWorkerMirroredStrategy` (tensorflow/tensorflow#72388).

    Keras (3.15, and 3.16 dev) fails there for two reasons, both in
    `keras/src/backend/tensorflow/trainer.py`:

    1. `_maybe_symbolic_build` reduces the first distributed batch with
       `strategy.reduce("MEAN", batch, axis=None)` to build the optimizer
       and metrics. Collective all-reduce cannot reduce a dict of
       `PerReplica` values, and the mean of token ids is meaningless
       anyway: only shapes and dtypes matter. Fix: build from this worker's
       first replica's batch (Keras's private `_symbolic_build`).
    2. `reduce_per_replica(..., reduction="auto")` becomes
       `strategy.reduce("MEAN", value, axis=0)` for multi-worker collective
       strategies, and the step's logs are scalars: there is no axis 0.
       Fix: the training and test steps return each log as a 1-element
       vector, which that reduction averages into a scalar again.

    Active only under a multi-worker strategy on a Keras that needs it
    (`NEEDS_MULTI_WORKER_FIX`). Public alternative: none until the Keras
    issue is fixed.
    """

    def _fix_multi_worker(self):
        return NEEDS_MULTI_WORKER_FIX and is_multi_worker(
            self.distribute_strategy
        )

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not self._fix_multi_worker() or iterator is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        strategy = self.distribute_strategy
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tf.nest.map_structure(
                lambda v: strategy.experimental_local_results(v)[0], batch
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def train_step(self, data):
        logs = super().train_step(data)
        return _vector(logs) if self._fix_multi_worker() else logs

    def test_step(self, data):
        logs = super().test_step(data)
        return _vector(logs) if self._fix_multi_worker() else logs


class TrainerCompatModel(
    MultiWorkerFitMixin, SingleTraceBuildMixin, keras.Model
):
    """`keras.Model` with both fixes above: the base of our task models."""
