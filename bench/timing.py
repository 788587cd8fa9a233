"""Interleaved timing, the machine's matmul peak, and peak memory."""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def interleaved(candidates, rounds, steps):
    """Times each candidate's `step()` in rounds A, B, C, A, B, C ...

    `candidates` maps a name to a zero-argument function that runs one step
    and returns once its results are ready. Returns `{name: [seconds of
    each step]}`, rounds in order (`steps` per round).
    """
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, step in candidates.items():
            for _ in range(steps):
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    return times


def summary(seconds):
    """Median and spread (min, max, interquartile range) of step times."""
    x = np.asarray(seconds)
    q1, q3 = np.percentile(x, [25, 75])
    return {
        "median_s": float(np.median(x)),
        "min_s": float(x.min()),
        "max_s": float(x.max()),
        "iqr_s": float(q3 - q1),
        "n": int(x.size),
        "steps_s": [round(float(t), 4) for t in x],
    }


def paired_ratio(times, a, b, steps):
    """How many times faster `a` is than `b`, two ways.

    `ratio` (with `min`, `max`): the median over rounds of (round median
    of `b`) / (round median of `a`), from neighbouring rounds, robust to
    the machine speeding up or slowing down between rounds.
    `of_medians`: median of all `b` steps / median of all `a` steps, the
    ratio of the two rows' tokens/s. The two differ when rounds differ.
    """
    ta = np.asarray(times[a]).reshape(-1, steps)
    tb = np.asarray(times[b]).reshape(-1, steps)
    ratios = np.median(tb, axis=1) / np.median(ta, axis=1)
    return {
        "ratio": float(np.median(ratios)),
        "min": float(ratios.min()),
        "max": float(ratios.max()),
        "of_medians": float(np.median(tb) / np.median(ta)),
    }


def switch_cost(times, steps):
    """{name: median of each round's first step / median of its later
    steps}: what taking over from the previous candidate costs (e.g. the
    other framework's threads still spinning). `{}` for one step a round.
    """
    if steps < 2:
        return {}
    out = {}
    for name, seconds in times.items():
        t = np.asarray(seconds).reshape(-1, steps)
        out[name] = float(np.median(t[:, 0]) / np.median(t[:, 1:]))
    return out


def matmul_peak_flops(sizes=(1024, 2048), repeats=5, dtype="float32"):
    """TensorFlow's best measured FLOP/s: square matmuls of a few sizes,
    as a plain `tf.function` and with XLA, best call of `repeats` each.
    Measured in the run's own process, next to its timed rounds, so the
    peak sees the same threads and the same load as the steps. One number
    of the product comes back (sliced outside the function, so nothing
    can skip the rest), which waits for a GPU without copying the whole
    product off it."""
    best = 0.0
    for size in sizes:
        a = tf.random.normal([size, size], dtype=dtype)
        b = tf.random.normal([size, size], dtype=dtype)
        for jit in (False, True):
            matmul = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=jit)
            matmul(a, b)[0, 0].numpy()
            for _ in range(repeats):
                start = time.perf_counter()
                matmul(a, b)[0, 0].numpy()
                seconds = time.perf_counter() - start
                best = max(best, 2 * size**3 / seconds)
    return best


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(module, args, timeout=900):
    """Runs `python -m module args` and returns the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="3",
            PYTHONPATH=os.pathsep.join(
                [ROOT, os.environ.get("PYTHONPATH", "")]
            ),
        ),
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"python -m {module} {' '.join(args)} failed:\n"
            + done.stderr[-3000:]
        )
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    return json.loads(line)
