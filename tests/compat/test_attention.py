"""`tf_adapters.compat.attention` on the installed keras-hub: each supported
family's attention still calls `_compute_attention` with keys and values
`(batch, source, heads, head_dim)` and a mask `(batch, target, source)`
after its KV cache. An upgrade that changes this fails here first."""

import numpy as np
import pytest
import tiny_models

from tf_adapters.compat import attention as hook
from tf_adapters.compat.layers import walk_layers

FAMILIES = {
    "gpt2": ("CachedMultiHeadAttention", 2),
    "opt": ("CachedMultiHeadAttention", 2),
    "llama": ("LlamaAttention", 2),  # key/value heads already repeated
    "mistral": ("CachedMistralAttention", 2),
    "gemma": ("CachedGemmaAttention", 1),  # not repeated
}


def _attention_layers(backbone):
    return [x for x in walk_layers(backbone) if hook.attention_kind(x)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_hooked_attention_sees_keys_after_the_cache(family):
    backbone = tiny_models.backbone(family)
    kind, heads = FAMILIES[family]
    x = tiny_models.inputs(batch=2, length=6)
    base = np.asarray(backbone(x))
    layers = _attention_layers(backbone)
    assert [hook.attention_kind(a) for a in layers] == [kind] * 2
    for layer in layers:
        hook.hook_attention(layer)
    seen = []

    def edit(query, key, value, mask):
        seen.append((tuple(key.shape), tuple(value.shape), tuple(mask.shape)))
        return key, value, mask

    with hook.editing_attention(edit):
        out = np.asarray(backbone(x))
    np.testing.assert_array_equal(out, base)  # an identity edit is exact
    assert len(seen) == 2
    key, value, mask = seen[0]
    assert key[:3] == value[:3] == (2, 6, heads) and mask == (2, 6, 6)
    for layer in layers:
        hook.unhook_attention(layer)
        assert type(layer).__name__ == kind


def test_hooks_are_counted_and_serialize_as_keras_hub_classes():
    layer = _attention_layers(tiny_models.backbone("gpt2"))[0]
    plain = type(layer)
    hook.hook_attention(layer)
    hook.hook_attention(layer)
    assert type(layer).__name__ == "HookedCachedMultiHeadAttention"
    config = hook.serialize_unhooked(layer)
    assert config["registered_name"] == "keras_hub>CachedMultiHeadAttention"
    hook.unhook_attention(layer)
    assert type(layer) is not plain
    hook.unhook_attention(layer)
    assert type(layer) is plain


def test_sliding_windows_inside_the_attention_are_detected():
    backbone = tiny_models.gemma_sliding()
    windowed = [hook.windowed_inside(a) for a in _attention_layers(backbone)]
    assert windowed == [True, False]
