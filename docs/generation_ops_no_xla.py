"""Where batch-1 greedy decoding spends its time without XLA
(docs/performance.md, generation).

    PYTHONPATH=. python docs/generation_ops_no_xla.py [SHAPE]

Builds `bench.generate`'s base model (random weights) compiled without
XLA, runs two warm-up calls (32-token prompt, 32 new tokens), then traces
two calls under TensorFlow's profiler and sums each TensorFlow operation's
self time (`bench.profile.self_times`) by group: the decoder layers'
matmuls, the tied output projection, the other operations by type, the
executor's own work. The times are per call, summed over threads (an
operation's event spans its intra-op threads' work), so they add up to
more than the call's wall time.
"""

import collections
import sys

from bench import generate
from bench import profile
from bench.shapes import id_range

RUNTIME = (
    "ExecutorState::Process",
    "ParallelFor",
    "CpuExecutable::ExecuteAsyncOnStream",
)
OUTER = "KernelAndDeviceFunc::Run"  # the call itself: it holds the rest


def group(name):
    if "MatMul" in name:
        if "token_embedding" in name:
            return "output projection (tied embedding) matmul"
        if "while/body" in name:
            return "decoder layers' matmuls, per new token"
        return "prompt (prefill) matmuls"
    if name in RUNTIME or name.startswith("copy"):
        return f"runtime: {name.split('.')[0]}"
    return "op: " + (name.split(":")[-1] if ":" in name else name)


def main(shape="gpt2_small"):
    lm = generate.build_lm(shape, "base", jit_compile=False)
    x = generate.prompts(1, 32, 32, id_range(shape))

    def call():
        lm.generate(x, stop_token_ids=None)

    call()
    call()
    space, seconds = profile.trace(call, 2)
    totals = collections.Counter()
    counts = collections.Counter()
    for name, (self_s, n) in profile.self_times(space).items():
        if name != OUTER:
            totals[group(name)] += self_s / 2
            counts[group(name)] += n // 2
    print(f"{shape}: {seconds:.3f} s a call (wall), 32 new tokens")
    print("| group | ms a call | events a call |")
    print("|---|---:|---:|")
    for name, s in totals.most_common(14):
        print(f"| {name} | {s * 1000:.1f} | {counts[name]} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
