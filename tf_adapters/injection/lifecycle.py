"""The adapter life cycle on a model: install, refresh, restore, remove.

`api` (add / switch / delete), `unload` (merge / unload) and `checkpoint`
(save / load) all change a model's adapters through these functions, so
every change ends in the same `refresh`: enabled flags, what trains, and
compiled functions dropped.
"""

import keras
import keras_hub

from tf_adapters.compat.class_swap import swap_out
from tf_adapters.compat.layers import own_variables
from tf_adapters.compat.layers import walk_layers
from tf_adapters.compat.tracking import replace_sublayer
from tf_adapters.compat.trainer import reset_compiled_functions
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.composition import Composition
from tf_adapters.core.forward_scope import ForwardScopeMixin
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.layer_paths import select
from tf_adapters.core.state import AdapterEntry
from tf_adapters.core.state import ensure_state
from tf_adapters.core.state import get_state
from tf_adapters.core.state import require_state
from tf_adapters.injection.compose import install_composers
from tf_adapters.injection.compose import resolve
from tf_adapters.methods.prompt_tuning.prompt_embedding import PromptEmbedding
from tf_adapters.methods.registry import config_from_dict
from tf_adapters.methods.registry import planner_for


def split_model(model):
    """`(backbone, task)` of a keras-hub `Backbone`, or of a model around
    one (a keras-hub `Task` such as a `CausalLM`, or one of our task models
    such as `LabelWordClassifier`)."""
    if isinstance(model, keras_hub.models.Backbone):
        return model, None
    if isinstance(model, keras.Model) and isinstance(
        getattr(model, "backbone", None), keras_hub.models.Backbone
    ):
        return model.backbone, model
    raise TypeError(
        "`model` must be a keras-hub `CausalLM` (or other `Task`), a "
        "`Backbone`, or a model with a keras-hub `backbone` (e.g. "
        f"`tfa.LabelWordClassifier`). Received: {type(model).__name__}."
    )


def install(backbone, plan):
    """Applies a planned adapter and records it in the backbone's state.

    The backbone's class must already be adapted
    (`adapted_model.adapt_classes`).
    """
    state = ensure_state(backbone)
    plan.apply()
    state.adapters[plan.name] = AdapterEntry(plan.config)


def restore_adapters(backbone, saved):
    """Rebuilds adapters from `AdapterState.to_config()` (model loading)."""
    version = saved.get("format_version")
    if version != 1:
        raise ValueError(
            f"Unsupported tf_adapters state format_version {version!r}; "
            "upgrade tf_adapters to load this model."
        )
    for item in saved["adapters"]:
        config = config_from_dict(item["config"])
        install(backbone, planner_for(config)(backbone, config, item["name"]))
    state = get_state(backbone)
    state.active = saved.get("active")
    state.enabled = saved.get("enabled", True)
    state.composition = Composition.from_config(saved.get("composition"))
    trainable = saved.get("trainable")
    state.trainable = tuple(trainable) if trainable is not None else None
    for item in saved["adapters"]:
        if item.get("merged"):
            # The saved kernels already hold the merged update.
            for layer in adapter_layers(backbone, item["name"]):
                layer.merged = True
            state.adapters[item["name"]].merged = True
    refresh(backbone, None)


def _slot_adapter_layers(slot):
    if isinstance(slot.layer, PromptEmbedding):
        return [slot.layer]
    return slot.wrappers()


def adapter_layers(backbone, name=None):
    """Every adapter layer (wrappers and prompt tables) of `name` (or all)."""
    return [
        layer
        for slot in iter_slots(backbone)
        for layer in _slot_adapter_layers(slot)
        if name in (None, layer.adapter_name)
    ]


def adapter_variables(backbone, name):
    """Adapter variables keyed as in adapter checkpoints.

    A variable shared by several layers is listed once, under the first
    layer's path.
    """
    found, seen = {}, set()
    for slot in iter_slots(backbone):
        for layer in _slot_adapter_layers(slot):
            if layer.adapter_name != name:
                continue
            for key, var in layer.adapter_variables().items():
                if id(var) not in seen:
                    seen.add(id(var))
                    found[f"{slot.path}/{key}"] = var
    return found


def adapter_config(model, name):
    """The config adapter `name` was added with."""
    state = require_state(split_model(model)[0])
    state.check_known(name)
    return state.adapters[name].config


def model_slots(model):
    """Slots of the backbone, then of the task's own layers (e.g. a head).

    Paths are relative to the backbone, so the same pattern names the same
    layer whether a `CausalLM` or its `Backbone` is passed.
    """
    backbone, task = split_model(model)
    slots = list(iter_slots(backbone))
    if task is not None:
        slots += [
            s
            for s in iter_slots(task)
            if s.layer is not backbone
            and not s.path.startswith(backbone.name + "/")
        ]
    return slots


def trainable_layer_variables(model, patterns):
    """Variables of base layers named by `trainable_layers` patterns."""
    found = {}
    for slot in select(model_slots(model), patterns or []):
        if not isinstance(slot.layer, (AdapterLayer, PromptEmbedding)):
            for var in own_variables(slot.base, trainable_only=True):
                found[f"{slot.path}/{var.name}"] = var
    return found


def refresh(backbone, task):
    """Sets enabled flags and trainability; drops stale compiled functions."""
    state = get_state(backbone)
    _, enabled, trained = resolve(state)
    adapter_ids = set()
    for layer in adapter_layers(backbone):
        layer.adapter_enabled = layer.adapter_name in enabled
        frozen = getattr(layer, "frozen_keys", ())
        for key, var in layer.adapter_variables().items():
            var.trainable = layer.adapter_name in trained and key not in frozen
            adapter_ids.add(id(var))
    model = task if task is not None else backbone
    for var in model.weights:
        if id(var) not in adapter_ids:
            var.trainable = False
    for name in trained:
        patterns = state.adapters[name].config.trainable_layers
        for var in trainable_layer_variables(model, patterns).values():
            var.trainable = True
    install_composers(backbone, state)
    drop_compiled_functions(backbone, task)


def drop_compiled_functions(backbone, task):
    """Makes the next `fit` / `predict` / `generate` trace again."""
    reset_compiled_functions(task if task is not None else backbone)
    if task is not None:
        reset_compiled_functions(backbone)


def remove_adapter_layers(backbone, name):
    """Takes every layer of adapter `name` out, restoring what it wrapped."""
    for slot in list(iter_slots(backbone)):
        if isinstance(slot.layer, PromptEmbedding):
            if slot.layer.adapter_name == name:
                slot.layer.detach_from(slot.parent)
            continue
        holder, attr = slot.parent, slot.attr
        for wrapper in slot.wrappers():
            if wrapper.adapter_name == name:
                wrapper.detach()
                replace_sublayer(holder, attr, wrapper, wrapper.base_layer)
            else:
                holder, attr = wrapper, "base_layer"
    _release_scopes(backbone)
    if get_state(backbone) is not None:
        reset_compiled_functions(backbone)


def _release_scopes(backbone):
    """Gives layers whose adapters no longer hand tensors over their own
    class back."""
    for layer in walk_layers(backbone):
        if isinstance(layer, ForwardScopeMixin) and not any(
            isinstance(x, AdapterLayer) and x.needs_forward_scope
            for x in walk_layers(layer)
        ):
            swap_out(layer, ForwardScopeMixin)
