"""Batch-1 greedy generation: how many cores each decoder keeps busy
(docs/performance.md, generation).

    PYTHONPATH=. python docs/generation_cores_ab.py [SHAPE] [BATCH]

Times `bench.generate`'s base model (random weights, 32-token prompt, 32
new tokens, greedy, no stop token) compiled with XLA and without it, and
the `transformers` peer of the same shape, in 5 interleaved rounds after
one first call each, as the bench does. For every call it also records the
process's CPU time (user + system, all threads), so `cores` = CPU seconds
per wall second: 1.0 means the decoder ran on one core of the machine's
`os.cpu_count()`.
"""

import json
import os
import sys
import time

import numpy as np

from bench import generate
from bench import peer
from bench.shapes import id_range

NEW_TOKENS = 32
PROMPT = 32
ROUNDS = 5


def _cpu():
    t = os.times()
    return t.user + t.system


def _timed(call):
    wall, cpu = time.perf_counter(), _cpu()
    call()
    return time.perf_counter() - wall, _cpu() - cpu


def main(shape="gpt2_small", batch=1):
    batch = int(batch)
    x = generate.prompts(batch, PROMPT, NEW_TOKENS, id_range(shape))
    calls = {}
    for name, jit in (("xla", True), ("no_xla", False)):
        lm = generate.build_lm(shape, "base", jit)
        calls[name] = lambda lm=lm: lm.generate(x, stop_token_ids=None)
    peer.set_threads()
    call_for, _ = peer.generator(shape)
    # `call_for` returns the zero-argument call (as in `bench.generate`).
    calls["transformers"] = call_for(x["token_ids"][:, :PROMPT], NEW_TOKENS)
    first = {name: _timed(call)[0] for name, call in calls.items()}
    rows = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            rows[name].append(_timed(call))
    out = {"shape": shape, "batch": batch, "cpu_count": os.cpu_count()}
    for name, timings in rows.items():
        wall = np.array([w for w, _ in timings])
        cpu = np.array([c for _, c in timings])
        out[name] = {
            "first_call_s": round(first[name], 2),
            "median_s": round(float(np.median(wall)), 3),
            "new_tokens_per_s": round(batch * NEW_TOKENS / np.median(wall), 1),
            "cores": round(float(np.median(cpu / wall)), 2),
            "calls_s": [round(float(w), 3) for w in wall],
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
