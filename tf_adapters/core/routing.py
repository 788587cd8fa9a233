"""Choosing an adapter per example inside one graph (multi-adapter serving).

Within `route_by_example(adapter_index, names)`, every adapter layer whose
adapter is in `names` applies its update only to the examples routed to it
(a 0/1 gate per example), whatever the model's active adapter is. Updates
are additive (IA3's scaling is written as `y + g·(l·y − y)`), so adapters
stacked on one layer compose: each example gets exactly its own adapter.
"""

import contextlib
import threading

from keras import ops

_STATE = threading.local()


@contextlib.contextmanager
def route_by_example(adapter_index, names):
    """Routes example `i` to adapter `names[adapter_index[i]]`."""
    previous = getattr(_STATE, "route", None)
    _STATE.route = (adapter_index, {n: i for i, n in enumerate(names)})
    try:
        yield
    finally:
        _STATE.route = previous


def routing_active():
    return getattr(_STATE, "route", None) is not None


def gate(adapter_name):
    """The 0/1 float gate `(batch,)` of `adapter_name`, or `None` if that
    adapter is not routed."""
    adapter_index, index = _STATE.route
    if adapter_name not in index:
        return None
    return ops.cast(ops.equal(adapter_index, index[adapter_name]), "float32")


def apply_gate(gate, delta):
    """`delta` scaled per example by `gate` (`None`: unchanged)."""
    if gate is None:
        return delta
    shape = (-1,) + (1,) * (len(delta.shape) - 1)
    return ops.reshape(ops.cast(gate, delta.dtype), shape) * delta
