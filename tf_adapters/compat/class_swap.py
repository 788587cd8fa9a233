"""Mixing tf_adapters behaviour into an existing object's class.

keras-hub models rebuild themselves from `get_config()` by class, so an
adapted backbone must be of a class whose `from_config` restores its
adapters. We derive that class once per keras-hub class
(`AdaptedGPT2Backbone` for `GPT2Backbone`), register it with Keras
serialization, and switch the live object's class to it. Nothing else about
the object changes; `swap_out` switches it back.

Relies on Python allowing `__class__` assignment between classes with the
same layout (true for every Keras layer: no `__slots__`), and on Keras
serialization recording `type(obj)` (Keras 3.0+). Mixins nest (a decoder
block can take the parallel adapter's forward scope and gradient
checkpointing, in either order); `swap_out` takes out one and keeps the
others. Public alternative:
rebuild the model from its config as the adapted class and copy the
weights, which doubles memory for a moment.
"""

import keras

_MIXED = {}
_BASE = "tfa_base_class"
_REGISTERED = "tfa_registered"


def mixed_class(mixin, base_cls, register=False):
    """The class `(mixin, base_cls)`, created (and registered) once."""
    key = (mixin, base_cls)
    if key not in _MIXED:
        cls = type(
            mixin.class_prefix + base_cls.__name__,
            (mixin, base_cls),
            {
                "__module__": mixin.__module__,
                _BASE: base_cls,
                _REGISTERED: register,
            },
        )
        if register:
            keras.saving.register_keras_serializable(package="tf_adapters")(cls)
        _MIXED[key] = cls
    return _MIXED[key]


def swap_in(obj, mixin, register=False):
    """Switches `obj` to the mixed class of `mixin` and its class."""
    if not isinstance(obj, mixin):
        cls = mixed_class(mixin, type(obj), register)
        object.__setattr__(obj, "__class__", cls)


def swap_out(obj, mixin):
    """Switches `obj` back to the class it had before `swap_in(obj,
    mixin)`, with the mixins swapped in after it still in (in order)."""
    if not isinstance(obj, mixin):
        return
    outer, cls = [], type(obj)
    while _BASE in cls.__dict__:  # a mixed class: (its mixin, its base)
        outer.append(cls)
        cls = cls.__dict__[_BASE]
    for mixed in reversed(outer):
        if mixed.__bases__[0] is not mixin:
            cls = mixed_class(
                mixed.__bases__[0], cls, getattr(mixed, _REGISTERED)
            )
    object.__setattr__(obj, "__class__", cls)


def base_class_of(obj):
    """The class `obj` had before any `swap_in` (its own if none)."""
    return getattr(type(obj), _BASE, type(obj))
