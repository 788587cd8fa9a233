from tf_adapters.injection.plan import AdapterPlan
from tf_adapters.injection.plan import projection_slots
from tf_adapters.injection.plan import role_of
from tf_adapters.methods.lora.lora_layer import LoraLayer


def plan_lora(backbone, config, name):
    slots = projection_slots(
        backbone,
        config.target_layers,
        config.exclude,
        "target_layers",
        default=lambda family: family.lora,
    )
    plan = AdapterPlan(name, config)
    owners = {}
    for slot in slots:
        owner = owners.get(role_of(slot.path)) if config.share_weights else None
        layer = LoraLayer(
            slot.layer,
            name,
            rank=config.rank,
            alpha=config.alpha,
            dropout=config.dropout,
            shared=owner,
        )
        owners.setdefault(role_of(slot.path), layer)
        layer.build()
        plan.wraps.append((slot, layer))
    return plan
