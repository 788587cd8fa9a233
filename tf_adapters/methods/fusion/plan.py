from tf_adapters.core.composition import check_composable
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.plan import AdapterPlan
from tf_adapters.core.state import get_state
from tf_adapters.methods.fusion.fusion_layer import FusionLayer


def plan_fusion(backbone, config, name):
    """A `FusionLayer` on every layer that carries an update of one of the
    fused adapters (outside all of them), mixing those present there."""
    state = get_state(backbone)
    have = list(state.adapters) if state is not None else []
    missing = [a for a in config.adapters if a not in have]
    if missing:
        raise ValueError(
            f"Fusion {name!r} mixes adapters {config.adapters}, but "
            f"{missing} {'is' if len(missing) == 1 else 'are'} not on the "
            f"model (adapters: {have}). Add or load them first "
            "(`tfa.load_adapter`), then the fusion."
        )
    check_composable(state, config.adapters, f"fusion {name!r}")
    plan = AdapterPlan(name, config)
    where = {a: [] for a in config.adapters}
    for slot in iter_slots(backbone):
        present = {
            w.adapter_name for w in slot.wrappers() if not w.passes_through
        }
        fused = [a for a in config.adapters if a in present]
        if not fused:
            continue
        for a in fused:
            where[a].append(slot.path)
        layer = FusionLayer(
            slot.layer,
            name,
            adapters=fused,
            temperature=config.temperature,
            init_std=config.init_std,
        )
        layer.build()
        plan.wraps.append((slot, layer))
    first = config.adapters[0]
    for other in config.adapters[1:]:
        if where[other] != where[first]:
            raise ValueError(
                f"Fusion {name!r} mixes adapters on the same layers, but "
                f"{first!r} adapts {where[first]} and {other!r} adapts "
                f"{where[other]}. Fuse adapters of one kind and targets."
            )
    return plan
