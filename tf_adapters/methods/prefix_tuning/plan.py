from tf_adapters.compat.attention import KEY_VALUE
from tf_adapters.compat.attention import attention_kind
from tf_adapters.compat.attention import supported_families
from tf_adapters.compat.attention import windowed_inside
from tf_adapters.compat.class_swap import base_class_of
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.plan import AdapterPlan
from tf_adapters.methods.prefix_tuning.prefix_attention import PrefixAttention


def plan_prefix_tuning(backbone, config, name):
    slots = attention_slots(backbone)
    plan = AdapterPlan(name, config)
    owner = None
    for index, slot in enumerate(slots):
        key, value = (_projection(slot, n) for n in KEY_VALUE)
        layer = PrefixAttention(
            slot.layer,
            name,
            config.num_virtual_tokens,
            key_shape=key.dims(key.kernel_out),
            value_shape=value.dims(value.kernel_out),
            layer_index=index,
            num_layers=len(slots),
            hidden_dim=key.dims(key.contracted)[0],
            projection_dim=config.projection,
            init_std=config.init_std,
            seed=config.seed,
            shared=owner,
        )
        layer.build()
        if owner is None:
            owner = layer
        plan.wraps.append((slot, layer))
    return plan


def attention_slots(backbone):
    """The slot of each decoder block's attention layer.

    Raises:
        ValueError: naming the family when its attention is not supported,
            with the supported families.
    """
    family = base_class_of(backbone).__name__
    blocks = getattr(backbone, "transformer_layers", None) or []
    found = [s for s in iter_slots(backbone) if attention_kind(s.base)]
    if not blocks or len(found) != len(blocks):
        raise ValueError(
            f"Prefix tuning does not support {family}: it needs one "
            "keras-hub attention layer whose keys it can extend per decoder "
            f"block. Supported families: {supported_families()}."
        )
    for slot in found:
        if windowed_inside(slot.base):
            raise ValueError(
                f"Prefix tuning does not support {family} with sliding-window "
                f"attention ({slot.path!r}): the window is applied to the "
                "mask by position inside the attention, where the prefix "
                "would shift it. Supported: the same family without "
                "`use_sliding_window_attention`."
            )
        if slot.attr is None:
            raise ValueError(
                f"Layer {slot.path!r} is not held by an attribute of its "
                "parent layer, so it cannot be wrapped."
            )
    return found


def _projection(slot, name):
    """The spec of the attention's `key` or `value` projection."""
    for inner in iter_slots(slot.base):
        if inner.path == name:
            return EinsumSpec.from_layer(inner.base)
    raise ValueError(
        f"Attention layer {slot.path!r} has no {name!r} projection; prefix "
        "tuning reads the key/value shapes from it."
    )
