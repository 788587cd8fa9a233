"""`python -m bench.profile`: the trace's reading (self times, the HLO's
dots and their FLOPs) and a tiny LoRA step's summary."""

import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from bench import profile
from bench.timing import run_child


def _space(events):
    """An XSpace with one host thread holding `(name, start, duration)`
    events (picoseconds)."""
    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    line = plane.lines.add(name="python")
    for i, (name, start, duration) in enumerate(events, start=1):
        plane.event_metadata[i].id = i
        plane.event_metadata[i].name = name
        line.events.add(metadata_id=i, offset_ps=start, duration_ps=duration)
    return space


def test_self_time_leaves_out_nested_events():
    # outer [0, 10) holds a [1, 4) and b [5, 9); b holds c [6, 7).
    space = _space([("outer", 0, 10), ("a", 1, 3), ("b", 5, 4), ("c", 6, 1)])
    times = profile.self_times(space)
    assert {k: v[0] * 1e12 for k, v in times.items()} == {
        "outer": 3,
        "a": 3,
        "b": 3,
        "c": 1,
    }
    assert all(v[1] == 1 for v in times.values())


def test_a_traced_matmul_is_one_dot_with_its_flops():
    a = tf.random.normal([64, 32])
    b = tf.random.normal([32, 16])
    matmul = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=True)
    matmul(a, b).numpy()
    space, seconds = profile.trace(lambda: matmul(a, b).numpy(), steps=2)
    assert seconds > 0
    # The compiled program's HLO comes with the trace (the per-operation
    # events need XLA's flag set before TensorFlow loads: the next test
    # runs the command in its own process).
    # The trace carries every program this process compiled (other
    # tests' too, whose instruction names may be the matmul's): the
    # matmul's module is the one whose dot has its FLOPs.
    kinds = [
        set(profile.module_operations(module).values())
        for module in profile.hlo_modules(space)
    ]
    assert any((profile.MATMUL, 2 * 64 * 16 * 32) in k for k in kinds)
    assert not any((profile.MATMUL, 2 * 64 * 16 * 33) in k for k in kinds)


def test_the_command_on_a_tiny_lora_step():
    args = "--shape tiny --steps 2 --batch-size 2 --sequence-length 16"
    result = run_child(
        "bench.profile", [*args.split(), "--peak-sizes", "128", "256"]
    )
    kinds = result["by_kind"]
    assert set(kinds) == set(profile.KINDS)
    assert kinds[profile.MATMUL] > 0 and kinds[profile.FUSION] > 0
    assert result["dot_flops"] > 0
    # Every HLO operation that ran is in the table, most time first.
    seconds = [r[2] for r in result["operations"]]
    assert seconds == sorted(seconds, reverse=True)
    op_time = sum(v for k, v in kinds.items() if k != profile.RUNTIME)
    assert np.isclose(sum(seconds), op_time)
    text = result["markdown"]
    assert "| matmul (XLA dots, alone or fused) |" in text
    assert text.count("| `") == 12


def test_the_command_on_tiny_generation():
    args = "--shape tiny --method base --steps 1 --batch-size 1"
    result = run_child(
        "bench.profile",
        [*args.split(), "--sequence-length", "8", "--new-tokens", "4"]
        + ["--peak-sizes", "128", "--bandwidth-mb", "16"],
    )
    assert result["new_tokens"] == 4 and result["weight_bytes"] > 0
    assert result["by_kind"][profile.MATMUL] > 0
    assert result["markdown"].startswith("**generation, base on tiny**")
    assert "4 new tokens (greedy, KV cache)" in result["markdown"]
    assert result["read_bandwidth"] > 0
    assert "this process read memory at" in result["markdown"]
