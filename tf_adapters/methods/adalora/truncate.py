"""What an AdaLoRA checkpoint keeps: the triplets its masks keep.

`save_adapter` leaves out every masked triplet (its `Q` row, singular
value and `P` column) and records each layer's remaining rank in the saved
config's `rank_pattern`; `load_adapter` builds the layers at those ranks,
with the scale of the initial rank, so the reloaded adapter computes the
same update (PEFT's `resize_state_dict_by_rank_pattern`).
"""

import dataclasses

import numpy as np
from keras import ops

from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.methods.adalora.adalora_layer import AdaLoraLayer
from tf_adapters.methods.adalora.config import AdaLoraConfig

# Each factor's rank axis.
RANK_AXES = {"lora_a": -1, "lora_e": 0, "lora_b": 0}


def adalora_layers(backbone, name=None):
    """`{layer path: AdaLoraLayer}` of adapter `name` (default: all)."""
    found = {}
    for slot in iter_slots(backbone):
        for layer in slot.wrappers():
            if isinstance(layer, AdaLoraLayer) and name in (
                None,
                layer.adapter_name,
            ):
                found[slot.path] = layer
    return found


def adalora_ranks(model, name=None):
    """The rank each AdaLoRA layer keeps: what `AdaLoraCallback` left.

    Args:
        model: a keras-hub `CausalLM` (or other task) or `Backbone`.
        name: str. Only this adapter's layers. Defaults to `None` (all).

    Returns:
        dict `{layer path: triplets its mask keeps}`, or `None` when the
        model has no AdaLoRA layer.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> config = tfa.AdaLoraConfig(init_rank=4, target_rank=2)
    >>> backbone = tfa.add_adapter(backbone, config)
    >>> for path, rank in tfa.adalora_ranks(backbone).items():
    ...     print(path, rank)
    transformer_layer_0/self_attention/query 4
    transformer_layer_0/self_attention/value 4
    """
    backbone = getattr(model, "backbone", model)
    layers = adalora_layers(backbone, name)
    return {path: layer.kept_rank for path, layer in layers.items()} or None


def keep_unmasked(backbone, name, config, arrays):
    """`(config, arrays)` of adapter `name` as a checkpoint stores them:
    for AdaLoRA, without the masked triplets and with `rank_pattern` set
    to each layer's remaining rank; any other method's unchanged."""
    if not isinstance(config, AdaLoraConfig):
        return config, arrays
    arrays, ranks = dict(arrays), {}
    for path, layer in adalora_layers(backbone, name).items():
        keep = np.flatnonzero(ops.convert_to_numpy(layer.rank_mask) > 0)
        for key, axis in RANK_AXES.items():
            full = arrays[f"{path}/{key}"]
            arrays[f"{path}/{key}"] = np.take(full, keep, axis=axis)
        ranks[path] = len(keep)
    return dataclasses.replace(config, rank_pattern=ranks), arrays
