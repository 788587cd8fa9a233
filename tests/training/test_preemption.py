"""`StopOnSignal`: SIGTERM / SIGINT stop `fit` after the running step, a
second signal at once, and the previous handlers come back. The end to end
run (SIGTERM, then `--resume`) is in `test_resume.py`."""

import os
import signal

import keras
import numpy as np
import pytest

import tf_adapters as tfa
from tf_adapters.training.preemption import StopOnSignal


def _fit_signalled(signals, stop):
    """Fits 4 steps of a tiny model; `signals` are sent while step 2 runs."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    send = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: (
            batch == 1 and [os.kill(os.getpid(), s) for s in signals]
        )
    )
    with stop:
        model.fit(
            np.ones((8, 2)),
            np.ones(8),
            batch_size=2,
            callbacks=[send, stop],
            verbose=0,
        )
    return int(model.optimizer.iterations)


def test_a_signal_stops_after_the_step_and_handlers_are_restored():
    def ours(*args):  # SIGTERM is never fatal here
        pass

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        before = signal.getsignal(signal.SIGINT)
        stop = StopOnSignal()
        assert _fit_signalled([signal.SIGINT], stop) == 2
        assert stop.received == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) is before
        assert signal.getsignal(signal.SIGTERM) is ours
        # A second signal stops at once, and the handlers are restored.
        with pytest.raises(KeyboardInterrupt, match="SIGTERM again"):
            _fit_signalled([signal.SIGTERM, signal.SIGTERM], StopOnSignal())
        assert signal.getsignal(signal.SIGTERM) is ours
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert issubclass(tfa.TrainingInterrupted, KeyboardInterrupt)
