"""Merging adapters into base weights and taking adapter layers out."""

import contextlib

from tf_adapters.core.state import clear_state
from tf_adapters.core.state import get_state
from tf_adapters.core.state import require_state
from tf_adapters.injection.adapted_model import unadapt_classes
from tf_adapters.injection.lifecycle import adapter_layers
from tf_adapters.injection.lifecycle import drop_compiled_functions
from tf_adapters.injection.lifecycle import refresh
from tf_adapters.injection.lifecycle import remove_adapter_layers
from tf_adapters.injection.lifecycle import split_model


def merge_adapter(model):
    """Folds the active adapter into the base kernels (LoRA, IA3).

    Calls then cost what the base model costs and give the same outputs;
    `unmerge_adapter` undoes it. Adding, switching or disabling adapters is
    refused while one is merged.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            A model whose active adapter is LoRA or IA3.

    Returns:
        `None`; the base kernels change in place.

    Raises:
        ValueError: if no adapter is active or the active one cannot merge.

    Example:
    >>> import numpy as np, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> rng = np.random.default_rng(0)
    >>> for var in backbone.trainable_weights:  # as if trained
    ...     _ = var.assign(rng.normal(0, 0.3, var.shape).astype("float32"))
    >>> x = {"token_ids": np.ones((1, 4), "int32"),
    ...      "padding_mask": np.ones((1, 4), "int32")}
    >>> before = backbone(x)
    >>> tfa.merge_adapter(backbone)
    >>> bool(np.allclose(before, backbone(x), atol=1e-5))
    True
    """
    backbone, task = split_model(model)
    state = require_state(backbone)
    if state.composition is not None and state.enabled:
        raise ValueError(
            f"{state.composition!r} is active; only a single adapter "
            "merges. Activate one with `set_active_adapter(model, name)`, "
            "or combine LoRA adapters into one with `add_weighted_adapter`."
        )
    if state.active is None or not state.enabled:
        raise ValueError("No adapter is active; nothing to merge.")
    entry = state.adapters[state.active]
    if entry.merged:
        return
    layers = adapter_layers(backbone, state.active)
    unmergeable = sorted(
        {type(x).__name__ for x in layers if not _mergeable(x)}
    )
    if unmergeable:
        raise ValueError(
            f"Adapter {state.active!r} ({entry.config.method}) cannot be "
            f"merged into the base weights: {unmergeable} add computation "
            "that no kernel can absorb. Only LoRA and IA3 merge."
        )
    quantized = _quantized(layers)
    if quantized:
        raise ValueError(
            f"Adapter {state.active!r} ({entry.config.method}) cannot be "
            f"merged: the base layers it adapts are quantized ({quantized}), "
            "and their integer kernels would round the update away. Use it "
            "unmerged (`export_saved_model(..., merge=False)` exports it "
            "so), or merge it into the float base and quantize afterwards."
        )
    for layer in layers:
        layer.merge()
    entry.merged = True
    refresh(backbone, task)


def unmerge_adapter(model):
    """Takes merged adapter updates back out of the base kernels.

    Undoes `merge_adapter` (up to float rounding); a model with nothing
    merged is left as it is.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            An adapted model.

    Returns:
        `None`; the base kernels change in place.

    Raises:
        ValueError: if a merged adapter's base layers were quantized after
            the merge.

    Example:
    >>> import numpy as np, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> x = {"token_ids": np.ones((1, 4), "int32"),
    ...      "padding_mask": np.ones((1, 4), "int32")}
    >>> base = backbone(x)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> rng = np.random.default_rng(0)
    >>> for var in backbone.trainable_weights:  # as if trained
    ...     _ = var.assign(rng.normal(0, 0.3, var.shape).astype("float32"))
    >>> tfa.merge_adapter(backbone)
    >>> tfa.unmerge_adapter(backbone)
    >>> tfa.disable_adapters(backbone)  # allowed again once unmerged
    >>> bool(np.allclose(base, backbone(x), atol=1e-5))
    True
    """
    backbone, task = split_model(model)
    state = require_state(backbone)
    for name, entry in state.adapters.items():
        if entry.merged:
            layers = adapter_layers(backbone, name)
            quantized = _quantized(layers)
            if quantized:
                raise ValueError(
                    f"Adapter {name!r} was merged and the base quantized "
                    f"afterwards ({quantized}): its update is part of the "
                    "integer kernels now and cannot be taken back out. "
                    "Reload the float base to get it without the adapter."
                )
            for layer in layers:
                layer.unmerge()
            entry.merged = False
    refresh(backbone, task)


@contextlib.contextmanager
def temporarily_merged(model):
    """Merges the active adapter (LoRA, IA3) for the duration of a block.

    The base kernels are copied first and restored bit for bit afterwards
    (an unmerge by subtraction would leave rounding errors). Yields whether
    anything was merged: adapters that cannot merge (bottlenecks, prompts,
    adapters on quantized kernels) are left as they are.
    """
    backbone, task = split_model(model)
    state = get_state(backbone)
    active = state.active if state is not None and state.enabled else None
    layers = adapter_layers(backbone, active) if active else []
    if (
        not layers
        or state.adapters[active].merged
        or not all(_mergeable(x) for x in layers)
        or _quantized(layers)
    ):
        yield False
        return
    saved = {}
    for layer in layers:
        for var in (
            layer.projection.kernel,
            getattr(layer.projection, "bias", None),
        ):
            if var is not None:
                saved[id(var)] = (var, var.numpy())
    merge_adapter(model)
    try:
        yield True
    finally:
        for var, value in saved.values():
            var.assign(value)
        for layer in layers:
            layer.merged = False
        state.adapters[active].merged = False
        refresh(backbone, task)


def merge_and_unload(model):
    """Merges the active adapter and returns the plain keras-hub model.

    The result has no adapter layers and the base model's classes, runs at
    base speed, and has every weight trainable again. With adapters disabled
    (or none active) nothing is merged and the adapters are just removed.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            An adapted model; its active adapter (if enabled) must be LoRA
            or IA3.

    Returns:
        The same model object, with the base model's class and no adapters.

    Example:
    >>> import numpy as np, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> plain = tfa.merge_and_unload(backbone)
    >>> type(plain).__name__
    'GPT2Backbone'
    """
    backbone, task = split_model(model)
    state = require_state(backbone)
    if state.active is not None and state.enabled:
        merge_adapter(model)
    for name in list(state.adapters):
        remove_adapter_layers(backbone, name)
    clear_state(backbone)
    unadapt_classes(backbone, task)
    for var in model.weights:
        var.trainable = True
    drop_compiled_functions(backbone, task)
    return model


def _mergeable(layer):
    return getattr(layer, "mergeable", False)


def _quantized(layers):
    """`"path: mode"` for each adapted base layer that Keras quantized."""
    found = []
    for layer in layers:
        projection = getattr(layer, "projection", None)
        mode = getattr(projection, "quantization_mode", None)
        if mode:
            found.append(f"{projection.path}: {mode}")
    return ", ".join(sorted(found)[:3]) + (
        f" and {len(found) - 3} more" if len(found) > 3 else ""
    )
