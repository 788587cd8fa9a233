"""AdapterFusion on a model: adding a fusion and reading its mixing weights
(the layer itself: `tf_adapters.methods.fusion`)."""

import numpy as np

from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.state import require_state
from tf_adapters.injection.api import add_adapter
from tf_adapters.injection.lifecycle import split_model
from tf_adapters.methods.fusion.config import FusionConfig
from tf_adapters.methods.fusion.fusion_layer import recording


def add_fusion(model, adapters, name="fusion", activate=True, **options):
    """Adds an AdapterFusion that learns to mix trained adapters.

    On every layer the adapters adapt, a small attention (query from the
    layer's plain output, keys and values from each adapter's update)
    mixes their updates. While the fusion is active its adapters run
    frozen and only the fusion trains: `compile` and `fit` as usual.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            A model carrying the trained `adapters`.
        adapters: list of str. The adapters to mix (same kind and targets:
            e.g. two Pfeiffer adapters, or two LoRA adapters).
        name: str. The fusion's name. Defaults to `"fusion"`.
        activate: bool. Make the fusion active. Defaults to `True`.
        **options: `tfa.FusionConfig` fields (`temperature`, `init_std`).

    Returns:
        The same model object.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> for task in ("sentiment", "topic"):
    ...     _ = tfa.add_adapter(backbone, tfa.BottleneckConfig(), name=task)
    >>> _ = tfa.add_fusion(backbone, ["sentiment", "topic"], name="mix")
    >>> tfa.active_adapter(backbone), tfa.list_adapters(backbone)
    ('mix', ['sentiment', 'topic', 'mix'])
    """
    config = FusionConfig(adapters=adapters, **options)
    return add_adapter(model, config, name=name, activate=activate)


def fusion_weights(model, inputs):
    """How the active fusion mixes its adapters, layer by layer.

    Calls the model on `inputs` (eagerly) and averages each fusion layer's
    softmax weights over the batch and the (unpadded) positions.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`
            whose active adapter is a fusion.
        inputs: the backbone's inputs (`{"token_ids", "padding_mask"}`).

    Returns:
        dict `{layer path: {adapter name: mean weight}}`; each layer's
        weights sum to 1.

    Example:
    >>> import keras_hub, numpy as np, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> for task in ("a", "b"):
    ...     _ = tfa.add_adapter(backbone, tfa.BottleneckConfig(), name=task)
    >>> _ = tfa.add_fusion(backbone, ["a", "b"], init_std=0.0)
    >>> x = {"token_ids": np.ones((1, 4), "int32"),
    ...      "padding_mask": np.ones((1, 4), "int32")}
    >>> weights = tfa.fusion_weights(backbone, x)
    >>> weights["transformer_layer_0/feedforward_output_dense"]
    {'a': 0.5, 'b': 0.5}
    """
    backbone, _ = split_model(model)
    state = require_state(backbone)
    active = state.active if state.enabled else None
    if active is None or state.adapters[active].config.method != "fusion":
        raise ValueError(
            "`fusion_weights` needs an active fusion; the active adapter is "
            f"{state.composition or active!r}. Activate one with "
            "`set_active_adapter(model, fusion_name)`."
        )
    mask = inputs.get("padding_mask") if isinstance(inputs, dict) else None
    with recording() as found:
        model(inputs)
    result = {}
    for slot in iter_slots(backbone):
        for layer in slot.wrappers():
            if layer.adapter_name != active or id(layer) not in found:
                continue
            probs = np.asarray(found[id(layer)][-1], "float64")
            result[slot.path] = dict(
                zip(layer.adapters, _mean(probs, mask), strict=True)
            )
    return result


def _mean(probs, mask):
    """`probs` `(batch, positions, n)` averaged over unpadded positions."""
    probs = probs.reshape(-1, probs.shape[-1]) if mask is None else probs
    if mask is not None:
        keep = np.asarray(mask, bool).reshape(probs.shape[:-1])
        probs = probs[keep]
    return [round(float(p), 6) for p in probs.mean(axis=0)]
