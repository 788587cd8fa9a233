from tf_adapters.core.plan import AdapterPlan
from tf_adapters.core.plan import projection_slots
from tf_adapters.methods.adalora.adalora_layer import AdaLoraLayer
from tf_adapters.models.families import family_default


def plan_adalora(backbone, config, name):
    slots = projection_slots(
        backbone,
        config.target_layers,
        config.exclude,
        "target_layers",
        default=family_default(backbone, lambda family: family.lora),
    )
    # PEFT averages the penalty over every `lora_A` and `lora_B` matrix.
    weight = config.orth_reg_weight / (2 * len(slots))
    plan = AdapterPlan(name, config)
    for slot in slots:
        layer = AdaLoraLayer(
            slot.layer,
            name,
            rank=config.rank_for(slot.path),
            alpha=config.alpha,
            init_rank=config.init_rank,
            dropout=config.dropout,
            orth_reg_weight=weight,
        )
        layer.build()
        plan.wraps.append((slot, layer))
    return plan
