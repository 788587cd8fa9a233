"""Adding, switching and deleting named adapters on a keras-hub model."""

import keras_hub

from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.validation import check_adapter_name
from tf_adapters.injection.adapted_model import STATE_ATTR
from tf_adapters.injection.adapted_model import AdaptedBackbone
from tf_adapters.injection.adapted_model import AdaptedCausalLM
from tf_adapters.injection.adapted_model import AdapterEntry
from tf_adapters.injection.adapted_model import AdapterState
from tf_adapters.injection.adapted_model import get_state
from tf_adapters.injection.class_swap import swap_in
from tf_adapters.injection.layer_paths import iter_slots
from tf_adapters.injection.layer_paths import select
from tf_adapters.methods.prompt_tuning.prompt_embedding import PromptEmbedding
from tf_adapters.methods.registry import config_from_dict
from tf_adapters.methods.registry import planner_for


def split_model(model):
    """`(backbone, task)` of a keras-hub `Backbone` or `Task`."""
    if isinstance(model, keras_hub.models.Backbone):
        return model, None
    if isinstance(model, keras_hub.models.Task) and isinstance(
        getattr(model, "backbone", None), keras_hub.models.Backbone
    ):
        return model.backbone, model
    raise TypeError(
        "`model` must be a keras-hub `CausalLM` (or other `Task`) or "
        f"`Backbone`. Received: {type(model).__name__}."
    )


def add_adapter(model, config, name="default", activate=True):
    """Puts a new named adapter into a keras-hub model.

    Targets are resolved and every adapter layer is built before the model is
    touched: on any error the model is unchanged. Afterwards every base
    weight is frozen; only the active adapter (and `config.trainable_layers`)
    train.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
        config: `LoraConfig`, `BottleneckConfig`, `IA3Config` or
            `PromptTuningConfig`.
        name: str. The adapter's name. Defaults to `"default"`.
        activate: bool. Make the new adapter the active one. Defaults to
            `True`.

    Returns:
        The same model object, adapted. Compile it after this call.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(
    ...     backbone, tfa.LoraConfig(rank=2), name="task")
    >>> tfa.list_adapters(backbone)
    ['task']
    """
    backbone, task = split_model(model)
    check_adapter_name(name)
    if not isinstance(config, AdapterConfig):
        raise TypeError(
            "`config` must be an adapter config such as `tfa.LoraConfig`. "
            f"Received: {config!r}."
        )
    state = get_state(backbone)
    if state is not None:
        if name in state.adapters:
            raise ValueError(
                f"An adapter named {name!r} already exists; pick another "
                "`name` or `delete_adapter` it first."
            )
        _check_nothing_merged(state, "add an adapter")
    plan = planner_for(config)(backbone, config, name)
    _install(backbone, task, plan)
    if activate or get_state(backbone).active is None:
        get_state(backbone).active = name
    _refresh(backbone, task)
    return model


def _install(backbone, task, plan):
    swap_in(backbone, AdaptedBackbone, register=True)
    if isinstance(task, keras_hub.models.CausalLM):
        swap_in(task, AdaptedCausalLM, register=True)
    if get_state(backbone) is None:
        object.__setattr__(backbone, STATE_ATTR, AdapterState())
    plan.apply()
    get_state(backbone).adapters[plan.name] = AdapterEntry(plan.config)


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
        _install(
            backbone, None, planner_for(config)(backbone, config, item["name"])
        )
    state = get_state(backbone)
    state.active = saved.get("active")
    state.enabled = saved.get("enabled", True)
    for item in saved["adapters"]:
        if item.get("merged"):
            # The saved kernels already hold the merged update.
            for layer in adapter_layers(backbone, item["name"]):
                layer.merged = True
            state.adapters[item["name"]].merged = True
    _refresh(backbone, None)


def set_active_adapter(model, name):
    """Makes `name` the adapter used in calls and training.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> _ = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    >>> _ = tfa.add_adapter(backbone, tfa.IA3Config(), name="b")
    >>> tfa.set_active_adapter(backbone, "a")
    >>> tfa.active_adapter(backbone)
    'a'
    """
    backbone, task = split_model(model)
    state = _require_state(backbone)
    if name not in state.adapters:
        raise ValueError(
            f"No adapter named {name!r}. Adapters: {list(state.adapters)}."
        )
    if name != state.active:
        _check_nothing_merged(state, "switch adapters")
    state.active = name
    state.enabled = True
    _refresh(backbone, task)


def disable_adapters(model):
    """Turns every adapter off: calls give exactly the base model's output."""
    backbone, task = split_model(model)
    state = _require_state(backbone)
    _check_nothing_merged(state, "disable adapters")
    state.enabled = False
    _refresh(backbone, task)


def enable_adapters(model):
    """Turns the active adapter back on after `disable_adapters`."""
    backbone, task = split_model(model)
    _require_state(backbone).enabled = True
    _refresh(backbone, task)


def delete_adapter(model, name):
    """Removes an adapter's layers and weights from the model."""
    from tf_adapters.injection.unload import remove_adapter_layers

    backbone, task = split_model(model)
    state = _require_state(backbone)
    if name not in state.adapters:
        raise ValueError(
            f"No adapter named {name!r}. Adapters: {list(state.adapters)}."
        )
    if state.adapters[name].merged:
        raise ValueError(
            f"Adapter {name!r} is merged into the base weights; "
            "`unmerge_adapter` it before deleting it."
        )
    remove_adapter_layers(backbone, name)
    del state.adapters[name]
    if state.active == name:
        state.active = next(iter(state.adapters), None)
    _refresh(backbone, task)


def list_adapters(model):
    """Names of the model's adapters, in the order they were added."""
    state = get_state(split_model(model)[0])
    return list(state.adapters) if state else []


def active_adapter(model):
    """The active adapter's name, or `None` (none, or all disabled)."""
    state = get_state(split_model(model)[0])
    if state is None or not state.enabled:
        return None
    return state.active


def adapter_config(model, name):
    return _require_state(split_model(model)[0]).adapters[name].config


def adapter_layers(backbone, name=None):
    """Every adapter layer (wrappers and prompt tables) of `name` (or all)."""
    found = []
    for slot in iter_slots(backbone):
        layers = slot.wrappers()
        if isinstance(slot.layer, PromptEmbedding):
            layers = [slot.layer]
        found += [x for x in layers if name in (None, x.adapter_name)]
    return found


def adapter_variables(backbone, name):
    """Adapter variables keyed as in adapter checkpoints.

    A variable shared by several layers is listed once, under the first
    layer's path.
    """
    found, seen = {}, set()
    for slot in iter_slots(backbone):
        layers = slot.wrappers()
        if isinstance(slot.layer, PromptEmbedding):
            layers = [slot.layer]
        for layer in layers:
            if layer.adapter_name == name:
                for key, var in layer.adapter_variables().items():
                    if id(var) not in seen:
                        seen.add(id(var))
                        found[f"{slot.path}/{key}"] = var
    return found


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
            for var in slot.base._trainable_variables:
                found[f"{slot.path}/{var.name}"] = var
    return found


def _refresh(backbone, task):
    """Sets enabled flags and trainability; drops stale compiled functions."""
    state = get_state(backbone)
    active = state.active if state.enabled else None
    layers = adapter_layers(backbone)
    adapter_ids = set()
    for layer in layers:
        on = layer.adapter_name == active
        layer.adapter_enabled = on
        variables = layer.adapter_variables().values()
        for var in variables:
            var.trainable = on
            adapter_ids.add(id(var))
    model = task if task is not None else backbone
    for var in model.weights:
        if id(var) not in adapter_ids:
            var.trainable = False
    if active is not None:
        patterns = state.adapters[active].config.trainable_layers
        for var in trainable_layer_variables(model, patterns).values():
            var.trainable = True
    reset_compiled_functions(model)
    if task is not None:
        reset_compiled_functions(backbone)


def reset_compiled_functions(model):
    """Forces `fit`/`predict`/`generate` to retrace with the new adapters."""
    for attr in (
        "train_function",
        "test_function",
        "predict_function",
        "generate_function",
    ):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)


def _require_state(backbone):
    state = get_state(backbone)
    if state is None:
        raise ValueError(
            "This model has no adapters; call `tf_adapters.add_adapter` first."
        )
    return state


def _check_nothing_merged(state, action):
    merged = [n for n, e in state.adapters.items() if e.merged]
    if merged:
        raise ValueError(
            f"Cannot {action} while adapter {merged[0]!r} is merged into the "
            "base weights; call `tf_adapters.unmerge_adapter(model)` first."
        )
