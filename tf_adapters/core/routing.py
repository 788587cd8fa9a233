"""Choosing adapters per example inside one graph (multi-adapter serving).

Within `route_by_example(adapter_index, names)`, every adapter layer whose
adapter is in `names` applies its update only to the examples routed to it
(a 0/1 gate per example), whatever the model's active adapter is. Within
`route_by_weights(weights, names)` each example `i` gets adapter `names[j]`'s
update scaled by `weights[i, j]`: a per-example weighted mix. Updates are
additive (IA3's scaling is written as `y + g·(l·y − y)`), so adapters on one
layer compose: with 0/1 gates each example gets exactly its own adapter; with
weights, LoRA and IA3 give `W + Σ_j w_j·ΔW_j` on every layer, and adapters
that act after a layer (bottleneck) are applied in the model's adapter order,
each scaled by its weight.
"""

import contextlib
import threading

from keras import ops

_STATE = threading.local()


@contextlib.contextmanager
def route_by_weights(weights, names):
    """Scales adapter `names[j]`'s update of example `i` by `weights[i, j]`
    (`weights`: float `(batch, len(names))`)."""
    previous = getattr(_STATE, "route", None)
    _STATE.route = (weights, {n: i for i, n in enumerate(names)})
    try:
        yield
    finally:
        _STATE.route = previous


def route_by_example(adapter_index, names):
    """Routes example `i` to adapter `names[adapter_index[i]]` alone."""
    weights = ops.one_hot(adapter_index, len(names), dtype="float32")
    return route_by_weights(weights, names)


def routing_active():
    return getattr(_STATE, "route", None) is not None


def gate(adapter_name):
    """The float gate `(batch,)` of `adapter_name`, or `None` if that
    adapter is not routed."""
    weights, index = _STATE.route
    if adapter_name not in index:
        return None
    return ops.cast(weights[:, index[adapter_name]], "float32")


def apply_gate(gate, delta):
    """`delta` scaled per example by `gate` (`None`: unchanged)."""
    if gate is None:
        return delta
    shape = (-1,) + (1,) * (len(delta.shape) - 1)
    return ops.reshape(ops.cast(gate, delta.dtype), shape) * delta
