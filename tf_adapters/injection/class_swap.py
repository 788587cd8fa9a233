"""Mixing tf_adapters behaviour into an existing object's class.

keras-hub models rebuild themselves from `get_config()` by class, so an
adapted backbone must be of a class whose `from_config` restores its adapters.
We derive that class once per keras-hub class (`AdaptedGPT2Backbone` for
`GPT2Backbone`), register it with Keras serialization, and switch the live
object's class to it. Nothing else about the object changes; `swap_out`
switches it back.
"""

import keras

_MIXED = {}


def mixed_class(mixin, base_cls, register=False):
    """The class `(mixin, base_cls)`, created and registered once."""
    key = (mixin, base_cls)
    if key not in _MIXED:
        cls = type(
            mixin.class_prefix + base_cls.__name__,
            (mixin, base_cls),
            {"__module__": mixin.__module__, "_tfa_base_class": base_cls},
        )
        if register:
            keras.saving.register_keras_serializable(package="tf_adapters")(cls)
        _MIXED[key] = cls
    return _MIXED[key]


def swap_in(obj, mixin, register=False):
    if not isinstance(obj, mixin):
        cls = mixed_class(mixin, type(obj), register)
        object.__setattr__(obj, "__class__", cls)


def swap_out(obj, mixin):
    if isinstance(obj, mixin):
        object.__setattr__(obj, "__class__", type(obj)._tfa_base_class)
