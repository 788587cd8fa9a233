"""Progress as plain log lines, for output that is not a terminal.

Keras's progress bar redraws one line, which a log file, CI or a notebook
shows as nothing (or as one line per epoch with `verbose=2`) until the
epoch ends. `Progress` writes a line every few units instead: how many are
done, the rate and the time left. `ProgressLog` is the Keras callback that
feeds it from `fit` (one unit per training step) or `predict` (one per
batch).
"""

import logging
import math
import sys
import time

import keras

log = logging.getLogger("tf_adapters.progress")

LINES = 10  # about this many lines per job, besides the first unit's


def format_seconds(seconds):
    """`'42 s'`, `'3 min 05 s'` or `'1 h 02 min'`.

    Example:
    >>> from tf_adapters.training.progress import format_seconds
    >>> format_seconds(42.4), format_seconds(185), format_seconds(3725)
    ('42 s', '3 min 05 s', '1 h 02 min')
    """
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Counts the units of a job and logs a line every `every` of them.

    The first unit gets its own line: it includes tracing and XLA
    compilation, so the rate and the time left are measured from the end
    of the first unit on.

    Args:
        what: str. The job, e.g. `"training"` or `"evaluating (test)"`.
        total: int. Units the job has.
        unit: str. What a unit is, e.g. `"step"` or `"batch"`.
        every: int or None. Units between lines; `None` is about
            `total / 10`.
        start: int. Units already done (a resumed run).
        log_fn: callable. Takes the line (default: this module's logger at
            INFO).
        clock: callable. Seconds, for tests.

    Example:
    >>> from tf_adapters.training.progress import Progress
    >>> now = [0.0]
    >>> p = Progress("training", 4, every=2, log_fn=print,
    ...              clock=lambda: now[0])
    >>> for step in range(1, 5):
    ...     now[0] += 10.0 if step == 1 else 2.0
    ...     p.update(step, loss=0.5 / step)
    training: step 1/4 in 10 s (tracing and compiling included); loss 0.5000
    training: step 2/4; loss 0.2500; 0.50 step/s; 4 s left
    training: step 4/4; loss 0.1250; 0.50 step/s; done in 16 s
    """

    def __init__(
        self,
        what,
        total,
        unit="step",
        every=None,
        start=0,
        log_fn=None,
        clock=time.perf_counter,
    ):
        self.what, self.total, self.unit = what, int(total), unit
        self.every = every or max(1, math.ceil((self.total - start) / LINES))
        self.start, self.log_fn, self.clock = start, log_fn or log.info, clock
        self.began = clock()
        self.first_done = None  # (units, time) when the first unit ended

    def update(self, done, **values):
        """`done` units are done; `values` (e.g. `loss=0.41`) go on the
        line."""
        now = self.clock()
        extra = "".join(f"; {k} {v:.4f}" for k, v in values.items())
        if self.first_done is None:
            self.first_done = (done, now)
            self.log_fn(
                f"{self.what}: {self.unit} {done}/{self.total} in "
                f"{format_seconds(now - self.began)} (tracing and compiling "
                f"included){extra}"
            )
            return
        if done != self.total and (done - self.start) % self.every:
            return
        units, then = done - self.first_done[0], now - self.first_done[1]
        rate = units / then if then > 0 else float("inf")
        line = f"{self.what}: {self.unit} {done}/{self.total}{extra}; "
        line += f"{rate:.2f} {self.unit}/s; "
        if done >= self.total:
            line += f"done in {format_seconds(now - self.began)}"
        else:
            line += f"{format_seconds((self.total - done) / rate)} left"
        self.log_fn(line)


class ProgressLog(keras.callbacks.Callback):
    """A Keras callback that logs `Progress` lines from `fit` (a unit per
    training step, with the loss Keras reports: the epoch's running mean)
    or `predict` (a unit per batch).

    Args:
        what: str. The job's name on each line.
        total: int. Steps (`fit`) or batches (`predict`).
        start: int. Steps already done (a resumed run).
        **kwargs: `Progress` arguments (`every`, `log_fn`, `clock`).

    Example:
    >>> import numpy as np, keras
    >>> from tf_adapters.training.progress import ProgressLog
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> lines, ticks = [], iter(range(100))  # a clock: 1 s a reading
    >>> _ = model.fit(np.ones((8, 3)), np.ones((8, 1)), batch_size=2,
    ...               verbose=0, callbacks=[ProgressLog(
    ...                   "training", 4, every=2, log_fn=lines.append,
    ...                   clock=lambda: next(ticks))])
    >>> for line in lines:
    ...     print(line.split(";")[0])
    training: step 1/4 in 1 s (tracing and compiling included)
    training: step 2/4
    training: step 4/4
    """

    def __init__(self, what, total, start=0, **kwargs):
        super().__init__()
        self.what, self.total, self.start = what, total, start
        self.kwargs = kwargs

    def _begin(self, unit):
        self.done = self.start
        self.progress = Progress(
            self.what, self.total, unit, start=self.start, **self.kwargs
        )

    def on_train_begin(self, logs=None):
        self._begin("step")

    def on_predict_begin(self, logs=None):
        self._begin("batch")

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        loss = (logs or {}).get("loss")
        values = {} if loss is None else {"loss": float(loss)}
        self.progress.update(self.done, **values)

    def on_predict_batch_end(self, batch, logs=None):
        self.done += 1
        self.progress.update(self.done)


def keras_progress(what, total, start=0):
    """`(verbose, callbacks)` for `fit` / `predict`: Keras's progress bar
    on a terminal, else `ProgressLog` lines (log files, CI, notebooks).

    Example:
    >>> from tf_adapters.training.progress import keras_progress
    >>> verbose, callbacks = keras_progress("training", 48)
    >>> verbose in (0, 1) and len(callbacks) == 1 - verbose
    True
    """
    if sys.stdout.isatty():
        return 1, []
    return 0, [ProgressLog(what, total, start)]
