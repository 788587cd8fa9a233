"""Keras `fit` under `MultiWorkerMirroredStrategy`: two small fixes.

Keras 3 (checked up to 3.15) cannot `fit` a model built in a
`MultiWorkerMirroredStrategy` scope (tensorflow/tensorflow#72388), for two
reasons, both in `keras/src/backend/tensorflow/trainer.py`:

1. `_maybe_symbolic_build` takes the first distributed batch and reduces it
   with `strategy.reduce("MEAN", batch, axis=None)` to get one example batch
   for building the optimizer and metrics. Collective all-reduce cannot
   reduce a dict of `PerReplica` values ("Attempt to convert a value
   ({'token_ids': PerReplica...}) to a Tensor"), and the mean of token ids
   is meaningless anyway: only shapes and dtypes matter. Fix: build from
   this worker's first replica's batch.
2. `reduce_per_replica(..., reduction="auto")` turns into
   `strategy.reduce("MEAN", value, axis=0)` for multi-worker collective
   strategies, and the step's logs are scalars: there is no axis 0. Fix:
   the training and test steps return each log as a 1-element vector, which
   that reduction averages over replicas into a scalar again.

`MultiWorkerFitMixin` applies both only while the model's strategy is a
multi-worker collective one and the Keras version is one known to need them
(`NEEDS_FIX`); everything else goes to Keras unchanged. The user's API is
the same: `fit`, `evaluate`, `--strategy multi_worker`.
"""

import keras
import tensorflow as tf

# Keras versions whose TensorFlow trainer has both problems. A newer Keras
# runs without the fix; tests/training/test_multi_worker.py shows whether
# it still needs it (the run fails without it).
NEEDS_FIX = tuple(int(p) for p in keras.version().split(".")[:2]) <= (3, 15)


def is_multi_worker(strategy):
    """Whether `strategy` all-reduces across worker processes."""
    extended = getattr(strategy, "extended", None)
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def _vector(logs):
    return {k: tf.reshape(v, [1]) for k, v in logs.items()}


class MultiWorkerFitMixin:
    """Lets Keras's `fit` / `evaluate` run under
    `MultiWorkerMirroredStrategy` (see the module docstring)."""

    def _fix_multi_worker(self):
        return NEEDS_FIX and is_multi_worker(self.distribute_strategy)

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
