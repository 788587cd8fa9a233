import math

from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.plan import AdapterPlan
from tf_adapters.core.plan import projection_slots
from tf_adapters.core.plan import role_of
from tf_adapters.methods.bottleneck.bottleneck_layer import BottleneckLayer
from tf_adapters.methods.bottleneck.parallel_layer import InputTap
from tf_adapters.methods.bottleneck.parallel_layer import (
    ParallelBottleneckLayer,
)
from tf_adapters.models.families import family_default
from tf_adapters.models.families import family_of


def plan_bottleneck(backbone, config, name):
    slots = projection_slots(
        backbone,
        config.target_layers,
        config.exclude,
        "target_layers",
        default=family_default(
            backbone, lambda family: family.bottleneck_targets(config.variant)
        ),
    )
    plan = AdapterPlan(name, config)
    owners = {}
    for slot in slots:
        role = role_of(slot.path)
        hidden_dim = EinsumSpec.from_layer(slot.base).output_dim
        size = config.size_for(hidden_dim)
        kwargs = dict(
            bottleneck_size=size,
            activation=config.activation,
            layer_norm=config.layer_norm,
            scaling=config.scaling,
            shared=owners.get(role) if config.share_weights else None,
        )
        if config.variant != "parallel":
            layer = BottleneckLayer(slot.layer, name, **kwargs)
            layer.build()
            owners.setdefault(role, layer)
            plan.wraps.append((slot, layer))
            continue
        source = _parallel_input_slot(backbone, config, slot)
        spec = EinsumSpec.from_layer(source.base)
        input_dim = math.prod(spec.dims(spec.contracted))
        layer = ParallelBottleneckLayer(
            slot.layer, name, input_dim=input_dim, **kwargs
        )
        layer.build()
        owners.setdefault(role, layer)
        tap = InputTap(source.layer, name, target=layer)
        tap.build()
        plan.wraps += [(slot, layer), (source, tap)]
        plan.scopes.append(slot.parent)
    return plan


def _parallel_input_slot(backbone, config, output_slot):
    """The feed-forward input projection in the same block as the output."""
    block = output_slot.path.rsplit("/", 1)[0]
    pattern = config.parallel_input_layer
    if pattern is None:
        family = family_of(backbone)
        if family is None:
            raise ValueError(
                f"{type(backbone).__name__} has no default feed-forward input "
                "layer; pass `parallel_input_layer=...`."
            )
        pattern = family.ffn_input
    candidates = projection_slots(
        backbone, [pattern], None, "parallel_input_layer"
    )
    found = [
        s
        for s in candidates
        if s.path.rsplit("/", 1)[0] == block and s.parent is output_slot.parent
    ]
    if len(found) != 1:
        raise ValueError(
            f"`parallel_input_layer`={pattern!r} must match exactly one layer "
            f"beside {output_slot.path!r}; found "
            f"{[s.path for s in found]}."
        )
    return found[0]
