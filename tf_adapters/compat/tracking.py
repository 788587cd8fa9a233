"""Swapping a sublayer of an already-built Keras layer.

Keras locks a layer's tracker after `build()`; Keras's own `enable_lora`
unlocks it to add weights, and we do the same to swap a sublayer, keeping
the new layer at the old one's position in the parent's tracked layers so
weight order (and `.keras` files) stay stable.

Relies on `Layer._tracker` (`keras.src.utils.tracking.Tracker`: `locked`,
`unlock()`, `is_in_store`, `replace_tracked_value`, `untrack`), Keras 3.0+;
checked on Keras 3.15-3.16 (dev) with keras-hub 0.32-0.33 (dev). Public
alternative: none; rebuilding the whole model from its config with the
adapters in place would avoid it.
"""


def replace_sublayer(parent, attr, old, new):
    """`parent.attr = new` where `old` was, at `old`'s tracked position."""
    tracker = parent._tracker
    if tracker.is_in_store("layers", old):
        tracker.replace_tracked_value("layers", old, new)
    _setattr_unlocked(parent, attr, new)


def set_sublayer(parent, attr, new):
    """Adds sublayer `new` as `parent.attr` to a built (locked) layer."""
    _setattr_unlocked(parent, attr, new)


def remove_sublayer(parent, attr):
    """Untracks and deletes the sublayer `parent.attr`."""
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
