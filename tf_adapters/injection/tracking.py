"""Swapping a sublayer of an already-built Keras layer.

Keras locks a layer's state after `build()`; Keras's own `enable_lora`
unlocks it to add weights, and we do the same to swap a sublayer, keeping the
new layer at the old one's position in the parent's tracked layers so weight
order (and `.keras` files) stay stable.
"""


def replace_child(parent, attr, old, new):
    tracker = parent._tracker
    if tracker.is_in_store("layers", old):
        tracker.replace_tracked_value("layers", old, new)
    _setattr_unlocked(parent, attr, new)


def set_child(parent, attr, new):
    _setattr_unlocked(parent, attr, new)


def remove_child(parent, attr):
    child = getattr(parent, attr)
    parent._tracker.untrack(child)
    locked = parent._tracker.locked
    parent._tracker.unlock()
    try:
        delattr(parent, attr)
    finally:
        parent._tracker.locked = locked


def _setattr_unlocked(parent, attr, value):
    tracker = parent._tracker
    locked = tracker.locked
    tracker.unlock()
    try:
        setattr(parent, attr, value)
    finally:
        tracker.locked = locked
