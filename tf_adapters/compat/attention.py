"""Changing the keys, values and mask a keras-hub attention layer attends
with, after its KV cache (prefix tuning's learned keys and values).

Every supported keras-hub attention layer projects the query, key and value,
applies RoPE, writes / reads its KV cache, and then calls its private
`self._compute_attention(query, key, value, attention_mask, ...)` with key
and value `(batch, source, heads, head_dim)` and a mask
`(batch, target, source)` (`heads`: the key/value heads, or the query heads
once grouped-query attention repeated them). `hook_attention` mixes
`AttentionHookMixin` into such a layer; within `editing_attention(edit)`,
its `_compute_attention` attends with `edit(query, key, value, mask)`
instead. Outside that block (and once unhooked) the layer computes exactly
what keras-hub's does.

Relies on that private method, its arguments and their layouts, and on each
layer's `key` / `value` projection sublayers, checked on keras-hub 0.32 with
Keras 3.15 (`SUPPORTED`). Layers that apply a sliding window inside
`_compute_attention` (Gemma 2, Qwen with `use_sliding_window_attention`)
index the mask by position and are not supported. Public alternative: none;
keras-hub has no hook for extra keys, so the alternative is a copy of each
family's attention `call`.
"""

import contextlib
import contextvars

import keras

from tf_adapters.compat.class_swap import base_class_of
from tf_adapters.compat.class_swap import swap_in
from tf_adapters.compat.class_swap import swap_out
from tf_adapters.compat.layers import del_untracked
from tf_adapters.compat.layers import get_untracked
from tf_adapters.compat.layers import set_untracked

# keras-hub attention class → the families (backbones) that use it.
SUPPORTED = {
    "CachedMultiHeadAttention": ("GPT2Backbone", "OPTBackbone"),
    "LlamaAttention": ("LlamaBackbone", "Llama3Backbone"),
    "CachedMistralAttention": ("MistralBackbone",),
    "QwenAttention": ("QwenBackbone", "Qwen2Backbone"),
    "CachedGemmaAttention": ("GemmaBackbone",),
}
# Names of the key and value projections inside each supported class.
KEY_VALUE = ("key", "value")

_EDITS = contextvars.ContextVar("tf_adapters_attention_edits", default=())
_HOOKS = "tfa_attention_hooks"


def supported_families():
    return [family for names in SUPPORTED.values() for family in names]


def attention_kind(layer):
    """The supported keras-hub attention class `layer` is, or `None`."""
    for cls in base_class_of(layer).__mro__:
        if cls.__name__ in SUPPORTED and cls.__module__.startswith(
            "keras_hub."
        ):
            return cls.__name__
    return None


def windowed_inside(layer):
    """Whether `layer` applies a sliding window inside `_compute_attention`
    (where it indexes the mask by position)."""
    return bool(getattr(layer, "use_sliding_window_attention", False))


@contextlib.contextmanager
def editing_attention(edit):
    """Hooked attention layers called within the block attend with
    `edit(query, key, value, mask) → (key, value, mask)`; nested blocks
    apply their edits outermost first."""
    token = _EDITS.set(_EDITS.get() + (edit,))
    try:
        yield
    finally:
        _EDITS.reset(token)


def hook_attention(layer):
    """Mixes `AttentionHookMixin` into `layer`; each call needs its own
    `unhook_attention`."""
    swap_in(layer, AttentionHookMixin)
    set_untracked(layer, _HOOKS, get_untracked(layer, _HOOKS, 0) + 1)


def unhook_attention(layer):
    """Undoes one `hook_attention`; the last one restores the class."""
    count = get_untracked(layer, _HOOKS, 0) - 1
    if count > 0:
        set_untracked(layer, _HOOKS, count)
        return
    if get_untracked(layer, _HOOKS) is not None:
        del_untracked(layer, _HOOKS)
    swap_out(layer, AttentionHookMixin)


class AttentionHookMixin:
    """Mixed into a keras-hub attention layer by `hook_attention`."""

    class_prefix = "Hooked"

    def _compute_attention(
        self, query, key, value, attention_mask=None, *args, **kwargs
    ):
        for edit in _EDITS.get():
            key, value, attention_mask = edit(query, key, value, attention_mask)
        return super()._compute_attention(
            query, key, value, attention_mask, *args, **kwargs
        )


def serialize_unhooked(layer):
    """`keras.layers.serialize(layer)` naming its keras-hub class, which
    deserializes anywhere (the hooked class is not registered)."""
    config = keras.layers.serialize(layer)
    cls = base_class_of(layer)
    config.update(
        module=cls.__module__,
        class_name=cls.__name__,
        registered_name=keras.saving.get_registered_name(cls),
    )
    return config
