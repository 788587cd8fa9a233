"""Stopping training cleanly on SIGTERM / SIGINT (preemptible machines).

Cloud schedulers preempt a machine by sending SIGTERM and, seconds later,
SIGKILL; Ctrl-C sends SIGINT. `StopOnSignal` turns either into
`model.stop_training` after the step that is running, so the caller can
save the training state and stop with `TrainingInterrupted`.
"""

import logging
import signal
import threading

import keras

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGTERM or SIGINT after a whole step; the training
    state was saved, and the same run with `resume=True` (`--resume`)
    continues from it to the weights an uninterrupted run ends with.

    A `KeyboardInterrupt`, as Ctrl-C in `fit` raises: code that catches
    `Exception` (retry loops, notebook cells that log and go on) does not
    swallow a preemption, and handlers written for Ctrl-C see it. The
    command line exits with status 75 (`EX_TEMPFAIL`).

    Args:
        message: str. What happened and how to resume.
        step: int. Steps done (and saved) when training stopped.
        steps: int. Steps the run was to train.
        signal_name: str. `"SIGTERM"` or `"SIGINT"`.
        state_dir: str. Where the training state was saved.

    Example:
    >>> import tf_adapters as tfa
    >>> try:
    ...     raise tfa.TrainingInterrupted(
    ...         "stopped", step=5, steps=12, signal_name="SIGTERM",
    ...         state_dir="runs/a/train_state")
    ... except KeyboardInterrupt as e:  # not caught by `except Exception`
    ...     print(e.step, e.steps, e.signal_name)
    5 12 SIGTERM
    """

    def __init__(self, message, step, steps, signal_name, state_dir):
        super().__init__(message)
        self.step = step
        self.steps = steps
        self.signal_name = signal_name
        self.state_dir = state_dir


class StopOnSignal(keras.callbacks.Callback):
    """Stops `fit` after the running step when SIGTERM or SIGINT arrives.

    Used as a context manager around `fit`: entering installs the handlers
    (in the main thread only: elsewhere Python cannot, and nothing changes),
    leaving restores the previous ones, whatever `fit` raised. The first
    signal is recorded in `received` and stops training at the end of the
    step; a second one raises `KeyboardInterrupt` at once (the impatient
    Ctrl-C), which an atomic save in progress survives: it leaves the
    previous file.

    Args:
        signals: tuple of `signal.Signals`. Defaults to `(SIGTERM, SIGINT)`.

    Example:
    >>> import os, signal, keras, numpy as np
    >>> from tf_adapters.training.preemption import StopOnSignal
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> preempt = keras.callbacks.LambdaCallback(  # SIGTERM during step 2
    ...     on_train_batch_begin=lambda batch, logs: batch == 1
    ...     and os.kill(os.getpid(), signal.SIGTERM))
    >>> with StopOnSignal() as stop:
    ...     history = model.fit(np.ones((8, 2)), np.ones(8), batch_size=2,
    ...                         callbacks=[preempt, stop], verbose=0)
    >>> stop.received.name, int(model.optimizer.iterations)
    ('SIGTERM', 2)
    """

    def __init__(self, signals=SIGNALS):
        super().__init__()
        self.signals = tuple(signals)
        self.received = None
        self._previous = {}

    def __enter__(self):
        self.received = None
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        # Logging here could deadlock (a handler runs between any two
        # bytecodes): the callback logs when it sees the flag.
        if self.received is not None:
            raise KeyboardInterrupt(
                f"{signal.Signals(signum).name} again: stopped at once"
            )
        self.received = signal.Signals(signum)

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None and not self.model.stop_training:
            log.warning(
                "%s received: training stops after this step (send it "
                "again to stop at once).",
                self.received.name,
            )
            self.model.stop_training = True
