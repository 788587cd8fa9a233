"""`python -m bench.profile`: what a training step spends its time on.

Runs a few steps of one method under TensorFlow's profiler with XLA:CPU's
per-operation trace events on (`--xla_cpu_enable_xprof_traceme`), then
reads the trace (`.xplane.pb`) and the compiled step's HLO, which the
trace carries. Each event's *self* time (its time less that of the events
nested in it on the same thread) is summed by kind: matrix
multiplications (XLA dots, alone or fused), other fusions (elementwise
work, reductions, softmax), copies and transposes, other XLA operations,
and the runtime around them (TensorFlow's executor, XLA's dispatch of its
operations, Python, threads waiting). An operation's event lasts as long
as the operation, which itself spreads its work over the cores' thread
pool: an operation's time is wall time, and the kinds' shares are shares
of the step. The dots' FLOPs, counted from their HLO shapes, over the
dots' time give the rate they ran at, beside the matmul peak measured in
the same process (all cores).

    python -m bench.profile --shape gpt2_small --method lora --steps 3
    python -m bench.profile --shape tiny --steps 1      # checks the code
"""

import os

# Before TensorFlow loads: XLA reads its flags once.
_FLAG = "--xla_cpu_enable_xprof_traceme=true"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " " + _FLAG
    ).strip()

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import train  # noqa: E402
from bench.shapes import id_range  # noqa: E402
from bench.timing import interleaved  # noqa: E402
from bench.timing import matmul_peak_flops  # noqa: E402
from tf_adapters.core.atomic import atomic_write_text  # noqa: E402

KINDS = (
    "matmul (XLA dots, alone or fused)",
    "other fusions (elementwise, reductions, softmax)",
    "copies and transposes",
    "other XLA operations",
    "runtime (TF executor, XLA dispatch, Python)",
)
MATMUL, FUSION, COPY, OTHER, RUNTIME = KINDS
COPY_OPCODES = {"copy", "transpose", "copy-start", "copy-done", "bitcast"}


def hlo_operations(space):
    """`{instruction name: (kind, FLOPs)}` for every instruction of the
    HLO modules in the trace (a dot's FLOPs: 2 × output elements × the
    contracted size; a fusion's: its dots'). Where two modules name an
    instruction alike, the largest module's wins."""
    operations = {}
    # The largest module last, so that its names win a collision.
    for module in sorted(hlo_modules(space), key=_size):
        operations.update(module_operations(module))
    return operations


def hlo_modules(space):
    """The HLO modules of every XLA program in the trace."""
    from tensorflow.compiler.xla.service import hlo_pb2

    modules = []
    for plane in space.planes:
        names = {k: v.name for k, v in plane.stat_metadata.items()}
        for metadata in plane.event_metadata.values():
            for stat in metadata.stats:
                if names.get(stat.metadata_id) == "Hlo Proto":
                    proto = hlo_pb2.HloProto()
                    proto.ParseFromString(stat.bytes_value)
                    modules.append(proto.hlo_module)
    return modules


def _size(module):
    return sum(len(c.instructions) for c in module.computations)


def module_operations(module):
    """`{instruction name: (kind, FLOPs)}` of one HLO module."""
    computations = {c.id: c for c in module.computations}
    out = {}
    for computation in module.computations:
        for inst in computation.instructions:
            if inst.opcode == "fusion":
                flops = sum(
                    _dot_flops(i, computations[c])
                    for c in inst.called_computation_ids
                    for i in computations[c].instructions
                    if i.opcode == "dot"
                )
                kind = MATMUL if flops else FUSION
            elif inst.opcode in ("dot", "convolution"):
                flops, kind = _dot_flops(inst, computation), MATMUL
            elif inst.opcode == "custom-call" and (
                "matmul" in inst.custom_call_target.lower()
            ):
                flops, kind = 0, MATMUL
            elif inst.opcode in COPY_OPCODES:
                flops, kind = 0, COPY
            else:
                flops, kind = 0, OTHER
            out[inst.name] = (kind, flops)
    return out


def _dot_flops(inst, computation):
    if inst.opcode != "dot":
        return 0
    by_id = {i.id: i for i in computation.instructions}
    lhs = by_id.get(inst.operand_ids[0])
    if lhs is None:
        return 0
    contracted = math.prod(
        lhs.shape.dimensions[d]
        for d in inst.dot_dimension_numbers.lhs_contracting_dimensions
    )
    return 2 * math.prod(inst.shape.dimensions) * contracted


def self_times(space):
    """`{event name: [self seconds, count]}` over every thread of the
    host plane: an event's duration less its nested events' on the same
    thread."""
    totals = {}
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            events = sorted(
                line.events, key=lambda e: (e.offset_ps, -e.duration_ps)
            )
            own = [e.duration_ps for e in events]
            stack = []  # (end, index) of the open events
            for i, e in enumerate(events):
                while stack and stack[-1][0] <= e.offset_ps:
                    stack.pop()
                if stack:
                    own[stack[-1][1]] -= e.duration_ps
                stack.append((e.offset_ps + e.duration_ps, i))
            for e, ps in zip(events, own, strict=True):
                name = plane.event_metadata[e.metadata_id].name
                entry = totals.setdefault(name, [0.0, 0])
                entry[0] += max(ps, 0) / 1e12
                entry[1] += 1
    return totals


def summarize(space, steps):
    """Per-step thread seconds by kind, the operations that take the most
    and the dots' FLOPs."""
    operations = hlo_operations(space)
    by_kind = dict.fromkeys(KINDS, 0.0)
    rows = []
    dot_flops = 0.0
    for name, (seconds, count) in self_times(space).items():
        kind, flops = operations.get(name, (RUNTIME, 0))
        by_kind[kind] += seconds / steps
        if kind != RUNTIME:
            executions = count / steps
            dot_flops += flops * executions
            rows.append((name, kind, seconds / steps, flops * executions))
    rows.sort(key=lambda r: -r[2])
    return {
        "by_kind": by_kind,
        "operations": rows,
        "operations_run": len(rows),
        "dot_flops": dot_flops,
        "hlo_operations": len(operations),
    }


def trace(step, steps):
    """`(XSpace, seconds a step)`: `step()` run `steps` times under
    TensorFlow's profiler (XLA:CPU's per-operation events included)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = (time.perf_counter() - start) / steps
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    return space, seconds


def profile(shape, method, steps, batch_size, sequence_length, new_tokens=0):
    """Builds `method` on `shape`, times `steps` steps, then traces
    `steps` more; returns `summarize`'s dict with the wall times. With
    `new_tokens`, a step is greedy generation of that many tokens after a
    prompt of `sequence_length` (`method`: a `bench.generate` variant)."""
    if new_tokens:
        from bench import generate

        lm = generate.build_lm(shape, method, jit_compile=True)
        vocab = id_range(shape)
        x = generate.prompts(batch_size, sequence_length, new_tokens, vocab)
        weights = lm.backbone.count_params() * 4  # float32 bytes

        def step():
            lm.generate(x, stop_token_ids=None)

    else:
        model = train.build_trainer(shape, method, "float32", True)
        x, y = train.batch(shape, batch_size, sequence_length)
        weights = None

        def step():
            model.train_on_batch(x, y)

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    walls = interleaved({method: step}, rounds=1, steps=steps)[method]
    space, traced = trace(step, steps)
    result = summarize(space, steps)
    result.update(
        shape=shape,
        method=method,
        steps=steps,
        batch_size=batch_size,
        sequence_length=sequence_length,
        new_tokens=new_tokens,
        weight_bytes=weights,
        first_step_s=first,
        step_s=float(np.median(walls)),
        traced_step_s=traced,
        cores=os.cpu_count(),
    )
    return result


def markdown(result, peak, top=12):
    """The summary as Markdown: time by kind, then the top operations.

    An operation uses the cores' thread pool itself, and independent
    operations may run at the same time, so the operations' time can add
    up to more than the step: shares are of the operations' time. The
    runtime's self time sums every thread's, waiting included: it is
    shown, not shared.
    """
    r = result
    kinds = {k: v for k, v in r["by_kind"].items() if k != RUNTIME}
    busy = sum(kinds.values())
    step = r["step_s"]
    dots = kinds[MATMUL]
    lines = [_header(r, busy), ""]
    lines += [
        "| kind | s / step | share of the operations' time |",
        "|---|---:|---:|",
    ]
    for kind, seconds in kinds.items():
        lines.append(f"| {kind} | {seconds:.3f} | {seconds / busy:.1%} |")
    lines.append(
        f"| {RUNTIME}, all threads, waiting included "
        f"| {r['by_kind'][RUNTIME]:.3f} | - |"
    )
    rate = r["dot_flops"] / dots if dots else 0.0
    lines += [
        "",
        f"The dots do {r['dot_flops'] / 1e9:.2f} GFLOP a step: "
        f"{rate / 1e9:.1f} GFLOP/s while they run, {rate / peak:.0%} of "
        f"the matmul peak measured in the same process "
        f"({peak / 1e9:.1f} GFLOP/s, {r['cores']} cores); over the whole "
        f"step {r['dot_flops'] / step / 1e9:.1f} GFLOP/s, "
        f"{r['dot_flops'] / step / peak:.0%} of the peak.",
        "",
        f"The {top} operations with the most self time (of "
        f"{r['operations_run']} that ran):",
        "",
        "| operation | kind | ms / step | share of the operations' time "
        "| GFLOP/s |",
        "|---|---|---:|---:|---:|",
    ]
    for name, kind, seconds, flops in r["operations"][:top]:
        speed = _rate(flops, seconds)
        lines.append(
            f"| `{name}` | {kind.split(' (')[0]} | {seconds * 1e3:.1f} | "
            f"{seconds / busy:.1%} | {speed} |"
        )
    return "\n".join(lines) + "\n"


def _header(r, busy):
    cores = r["cores"]
    if r["new_tokens"]:
        rate = r["batch_size"] * r["new_tokens"] / r["step_s"]
        what = (
            f"**generation, {r['method']} on {r['shape']}**, float32, XLA, "
            f"batch {r['batch_size']}, prompt {r['sequence_length']} "
            f"tokens, {r['new_tokens']} new tokens (greedy, KV cache), "
            f"{cores} cores: a call took {r['step_s']:.3f} s (median of "
            f"{r['steps']}), {rate:.1f} new tokens/s"
        )
        per_token = r["step_s"] / r["new_tokens"]
        speed = r["weight_bytes"] / per_token
        what += (
            f"; reading the {r['weight_bytes'] / 1e6:.0f} MB of weights "
            f"once a token in {per_token * 1e3:.1f} ms is "
            f"{speed / 1e9:.1f} GB/s"
        )
        if r.get("read_bandwidth"):
            what += (
                f", {speed / r['read_bandwidth']:.0%} of the "
                f"{r['read_bandwidth'] / 1e9:.1f} GB/s this process read "
                "memory at (`read_bandwidth`)"
            )
    else:
        what = (
            f"**{r['method']} on {r['shape']}**, float32, XLA, batch "
            f"{r['batch_size']} × {r['sequence_length']} tokens, {cores} "
            f"cores: a step took {r['step_s']:.3f} s (median of "
            f"{r['steps']})"
        )
    return (
        f"{what}; {r['traced_step_s']:.3f} s while traced, first call "
        f"{r['first_step_s']:.1f} s. XLA's operations took {busy:.3f} s "
        f"a step, {busy / r['step_s']:.0%} of the step"
        + (" (some ran at the same time)." if busy > r["step_s"] else ".")
    )


def read_bandwidth(megabytes=512, repeats=5):
    """The best bytes/s of an XLA sum over a float32 tensor of
    `megabytes` MB (all cores): the memory-bandwidth limit that a
    batch-1 decoding step, which reads every weight once, is held to."""
    x = tf.random.uniform([megabytes * 2**20 // 4])
    total = tf.function(tf.reduce_sum, jit_compile=True)
    total(x).numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        total(x).numpy()
        best = max(best, x.shape[0] * 4 / (time.perf_counter() - start))
    return best


def _rate(flops, seconds):
    if not flops or not seconds:
        return "-"
    rate = flops / seconds / 1e9
    return f"{rate:.1f}" if rate >= 1 else f"{rate:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--shape", default="gpt2_small")
    parser.add_argument("--method", default="lora")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=128,
        help="Tokens per example (with --new-tokens: the prompt's).",
    )
    parser.add_argument(
        "--new-tokens",
        type=int,
        default=0,
        help="Profile greedy generation of this many tokens instead of a "
        "training step (--method: base, lora_unmerged, lora_merged, "
        "houlsby).",
    )
    parser.add_argument(
        "--peak-sizes",
        type=int,
        nargs="+",
        default=[1024, 2048],
        help="Square matmul sizes of the peak measurement.",
    )
    parser.add_argument(
        "--bandwidth-mb",
        type=int,
        default=512,
        help="With --new-tokens: MB read to measure memory bandwidth.",
    )
    parser.add_argument("--output", help="Also write the Markdown here.")
    args = parser.parse_args(argv)
    result = profile(
        args.shape,
        args.method,
        args.steps,
        args.batch_size,
        args.sequence_length,
        args.new_tokens,
    )
    result["peak_flops"] = matmul_peak_flops(args.peak_sizes)
    if args.new_tokens:
        result["read_bandwidth"] = read_bandwidth(args.bandwidth_mb)
    result["markdown"] = markdown(result, result["peak_flops"])
    print(result["markdown"])
    if args.output:
        atomic_write_text(args.output, result["markdown"])
    # The last line: the whole result, for `bench.timing.run_child`.
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
