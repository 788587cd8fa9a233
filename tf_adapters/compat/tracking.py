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

import contextlib


def replace_sublayer(parent, attr, old, new):
    """`parent.attr = new` where `old` was, at `old`'s tracked position."""
    tracker = parent._tracker
    if tracker.is_in_store("layers", old):
        tracker.replace_tracked_value("layers", old, new)
    with _unlocked(parent):
        setattr(parent, attr, new)


def set_sublayer(parent, attr, new):
    """Adds sublayer `new` as `parent.attr` to a built (locked) layer."""
    with _unlocked(parent):
        setattr(parent, attr, new)


def remove_sublayer(parent, attr):
    """Untracks and deletes the sublayer `parent.attr`."""
    parent._tracker.untrack(getattr(parent, attr))
    with _unlocked(parent):
        delattr(parent, attr)


@contextlib.contextmanager
def _unlocked(parent):
    """`parent`'s tracker unlocked for the block, then as it was."""
    tracker = parent._tracker
    locked = tracker.locked
    tracker.unlock()
    try:
        yield
    finally:
        tracker.locked = locked
