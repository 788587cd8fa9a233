from tf_adapters.core.plan import AdapterPlan
from tf_adapters.core.plan import projection_slots
from tf_adapters.core.plan import role_of
from tf_adapters.methods.lora.lora_layer import LoraLayer
from tf_adapters.models.families import family_default


def plan_lora(backbone, config, name):
    slots = projection_slots(
        backbone,
        config.target_layers,
        config.exclude,
        "target_layers",
        default=family_default(backbone, lambda family: family.lora),
    )
    plan = AdapterPlan(name, config)
    owners = {}
    for slot in slots:
        owner = owners.get(role_of(slot.path)) if config.share_weights else None
        layer = LoraLayer(
            slot.layer,
            name,
            rank=config.rank_for(slot.path),
            alpha=config.alpha_for(slot.path),
            dropout=config.dropout,
            shared=owner,
            use_rslora=config.use_rslora,
            use_dora=config.use_dora,
            init=config.init,
        )
        owners.setdefault(role_of(slot.path), layer)
        layer.build()
        plan.wraps.append((slot, layer))
    return plan
