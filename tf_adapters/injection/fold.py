"""Folding prefix tuning's reparameterization network into its table."""

import dataclasses

from tf_adapters.core.state import require_state
from tf_adapters.injection.lifecycle import adapter_layers
from tf_adapters.injection.lifecycle import install
from tf_adapters.injection.lifecycle import refresh
from tf_adapters.injection.lifecycle import remove_adapter_layers
from tf_adapters.injection.lifecycle import split_model
from tf_adapters.methods.registry import planner_for


def fold_prefix(model, name=None):
    """Replaces a prefix-tuning adapter's network by the table it computes.

    A `tfa.PrefixTuningConfig(projection=...)` adapter computes every
    layer's keys and values from a small network in every call, which
    helps training; afterwards only its output matters. Folding stores that
    output as the adapter's table (`projection=None`), as PEFT does when it
    saves a prefix: the same outputs, cheaper calls, smaller checkpoints,
    and the network is gone (training continues on the table). A folded or
    table-only adapter is left as it is. `save_adapter` and `.keras` files
    keep whichever form the model has, so call this once training is done,
    before saving for serving or `export_saved_model`.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            A model with a prefix-tuning adapter.
        name: str. Which adapter. Defaults to the active one.

    Returns:
        `None`; the model changes in place.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> config = tfa.PrefixTuningConfig(num_virtual_tokens=4, projection=16)
    >>> backbone = tfa.add_adapter(backbone, config, name="prefix")
    >>> tfa.trainable_summary(backbone, print_fn=None).trainable
    720
    >>> tfa.fold_prefix(backbone)
    >>> tfa.trainable_summary(backbone, print_fn=None).trainable  # 4·2·2·8
    128
    """
    backbone, task = split_model(model)
    state = require_state(backbone)
    name = name or state.active
    if name is None:
        raise ValueError(
            f"No adapter is active; pass `name`, one of {list(state.adapters)}."
        )
    state.check_known(name)
    config = state.adapters[name].config
    if config.method != "prefix_tuning":
        raise ValueError(
            f"Adapter {name!r} is {config.method}, not prefix tuning; only "
            "prefix tuning has a network to fold."
        )
    if config.projection is None:
        return
    tables = {x.layer_index: x.prefix() for x in adapter_layers(backbone, name)}
    remove_adapter_layers(backbone, name)
    folded = dataclasses.replace(config, projection=None)
    plan = planner_for(folded)(backbone, folded, name)
    for _, layer in plan.wraps:
        keys, values = tables[layer.layer_index]
        layer.prefix_key.assign(keys)
        layer.prefix_value.assign(values)
    install(backbone, plan)  # the entry keeps its place among the adapters
    refresh(backbone, task)
