from tf_adapters.core.layer_paths import matches
from tf_adapters.core.plan import AdapterPlan
from tf_adapters.core.plan import projection_slots
from tf_adapters.methods.ia3.ia3_layer import IA3Layer
from tf_adapters.models.families import family_default
from tf_adapters.models.families import family_of


def plan_ia3(backbone, config, name):
    slots = projection_slots(
        backbone,
        config.target_layers,
        config.exclude,
        "target_layers",
        default=family_default(backbone, lambda family: family.ia3),
    )
    for pattern in config.feedforward_layers or ():
        if not any(matches(pattern, slot.path) for slot in slots):
            raise ValueError(
                f"`feedforward_layers` entry {pattern!r} matches none of the "
                "layers IA3 targets here "
                f"({', '.join(s.path for s in slots[:4])}, ...); it must "
                "name a subset of `target_layers`."
            )
    plan = AdapterPlan(name, config)
    for slot in slots:
        scale_input = scales_input(backbone, config, slot.path)
        layer = IA3Layer(slot.layer, name, scale_input=scale_input)
        layer.build()
        plan.wraps.append((slot, layer))
    return plan


def scales_input(backbone, config, path):
    """Whether IA3 rescales the input (not the output) of layer `path`:
    `config.feedforward_layers`, else the family's feed-forward output."""
    feedforward = config.feedforward_layers
    if feedforward is None:
        family = family_of(backbone)
        feedforward = [family.ffn_output] if family else []
    return any(matches(p, path) for p in feedforward)
