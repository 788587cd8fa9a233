"""Adding, switching and deleting named adapters on a keras-hub model."""

import dataclasses

from tf_adapters.core.composition import Composition
from tf_adapters.core.composition import check_composable
from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.state import get_state
from tf_adapters.core.state import require_state
from tf_adapters.core.validation import check_adapter_name
from tf_adapters.injection.adapted_model import adapt_classes
from tf_adapters.injection.compose import plan_composers
from tf_adapters.injection.lifecycle import install
from tf_adapters.injection.lifecycle import refresh
from tf_adapters.injection.lifecycle import remove_adapter_layers
from tf_adapters.injection.lifecycle import split_model
from tf_adapters.methods.registry import planner_for


def add_adapter(model, config, name="default", activate=True):
    """Puts a new named adapter into a keras-hub model.

    Targets are resolved and every adapter layer is built before the model is
    touched: on any error the model is unchanged. Afterwards every base
    weight is frozen; only the active adapter (and `config.trainable_layers`)
    train.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            The model to adapt, in place.
        config: `tfa.LoraConfig`, `tfa.BottleneckConfig`, `tfa.IA3Config`
            or `tfa.PromptTuningConfig`. Which adapter, and where.
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
        state.check_nothing_merged("add an adapter")
    plan = planner_for(config)(backbone, config, name)
    attach_planned(backbone, task, plan, activate)
    return model


def attach_planned(backbone, task, plan, activate=True):
    """Puts a planned adapter into the model: adapted classes, the
    adapter's layers and state, then what trains. `activate` makes it the
    active adapter (the model's first adapter always is)."""
    adapt_classes(backbone, task)
    install(backbone, plan)
    state = get_state(backbone)
    if activate or (state.active is None and state.composition is None):
        state.active = plan.name
        state.composition = state.trainable = None
    refresh(backbone, task)


def set_active_adapter(model, name, trainable=None):
    """Makes `name` the adapter used in calls and training.

    `name` may also be a composition of several adapters: `tfa.Stack(...)`
    (one after the other on every layer) or `tfa.Parallel(...)` (updates
    summed, optionally weighted). A fusion (`add_fusion`) is activated by
    its name: its adapters run frozen and only the fusion trains.

    Also turns adapters back on after `disable_adapters`. Switching is
    refused while an adapter is merged (`unmerge_adapter` it first).

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            A model adapted with `add_adapter` or `load_adapter`.
        name: str or `tfa.Stack` / `tfa.Parallel`. One of
            `list_adapters(model)`, or a composition of them.
        trainable: list of str, or `None`. With a composition, the adapters
            that train (e.g. the task adapter of a `Stack("lang", "task")`).
            Defaults to `None`: all of them.

    Returns:
        `None`; the model changes in place.

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
    state = require_state(backbone)
    if isinstance(name, Composition):
        _set_composition(backbone, state, name, trainable)
        refresh(backbone, task)
        return
    if not isinstance(name, str):
        raise TypeError(
            "`name` must be an adapter name or a `tfa.Stack` / "
            f"`tfa.Parallel` of them. Received: {name!r}."
        )
    if trainable is not None:
        raise ValueError(
            "`trainable` applies to compositions only; a single active "
            f"adapter always trains. Received: trainable={trainable!r}."
        )
    state.check_known(name)
    if name != state.active or state.composition is not None:
        state.check_nothing_merged("switch adapters")
    state.active = name
    state.composition = state.trainable = None
    state.enabled = True
    refresh(backbone, task)


def _set_composition(backbone, state, composition, trainable):
    """Validates a composition against the model, then makes it active;
    on any error the model is unchanged."""
    check_composable(state, composition.adapters, repr(composition))
    if trainable is not None:
        if isinstance(trainable, str) or not all(
            isinstance(t, str) for t in trainable
        ):
            raise TypeError(
                "`trainable` must be a list of adapter names. Received: "
                f"{trainable!r}."
            )
        extra = [t for t in trainable if t not in composition.adapters]
        if extra:
            raise ValueError(
                f"`trainable` names {extra}, which are not in {composition!r}."
            )
        trainable = tuple(trainable)
    state.check_nothing_merged("activate a composition")
    trial = dataclasses.replace(
        state,
        active=None,
        composition=composition,
        trainable=trainable,
        enabled=True,
    )
    plan_composers(backbone, trial)  # raises before anything changes
    state.active, state.composition = None, composition
    state.trainable, state.enabled = trainable, True


def disable_adapters(model):
    """Turns every adapter off: calls give exactly the base model's output.

    The adapters stay in the model; `enable_adapters` turns the active one
    back on. Refused while an adapter is merged.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            An adapted model.

    Returns:
        `None`; the model changes in place.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> tfa.disable_adapters(backbone)
    >>> tfa.active_adapter(backbone) is None
    True
    """
    backbone, task = split_model(model)
    state = require_state(backbone)
    state.check_nothing_merged("disable adapters")
    state.enabled = False
    refresh(backbone, task)


def enable_adapters(model):
    """Turns the active adapter back on after `disable_adapters`.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            An adapted model.

    Returns:
        `None`; the model changes in place.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(
    ...     backbone, tfa.LoraConfig(rank=2), name="task")
    >>> tfa.disable_adapters(backbone)
    >>> tfa.enable_adapters(backbone)
    >>> tfa.active_adapter(backbone)
    'task'
    """
    backbone, task = split_model(model)
    require_state(backbone).enabled = True
    refresh(backbone, task)


def delete_adapter(model, name):
    """Removes an adapter's layers and weights from the model.

    If it was the active adapter, the first remaining one becomes active.
    A merged adapter must be unmerged first.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            An adapted model.
        name: str. One of `list_adapters(model)`.

    Returns:
        `None`; the model changes in place.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> _ = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    >>> _ = tfa.add_adapter(backbone, tfa.IA3Config(), name="b")
    >>> tfa.delete_adapter(backbone, "b")
    >>> tfa.list_adapters(backbone), tfa.active_adapter(backbone)
    (['a'], 'a')
    """
    backbone, task = split_model(model)
    state = require_state(backbone)
    state.check_known(name)
    if state.adapters[name].merged:
        raise ValueError(
            f"Adapter {name!r} is merged into the base weights; "
            "`unmerge_adapter` it before deleting it."
        )
    users = [
        f
        for f, e in state.adapters.items()
        if name in getattr(e.config, "adapters", ())
    ]
    if users:
        raise ValueError(
            f"Adapter {name!r} is mixed by fusion {users[0]!r}; delete the "
            "fusion first."
        )
    remove_adapter_layers(backbone, name)
    del state.adapters[name]
    comp = state.composition
    if state.active == name or (comp is not None and name in comp.adapters):
        state.active = next(iter(state.adapters), None)
        state.composition = state.trainable = None
    refresh(backbone, task)


def list_adapters(model):
    """Names of the model's adapters, in the order they were added.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            Any model, adapted or not.

    Returns:
        list of str; empty for a model without adapters.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> tfa.list_adapters(backbone)
    []
    >>> _ = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    >>> _ = tfa.add_adapter(backbone, tfa.IA3Config(), name="b")
    >>> tfa.list_adapters(backbone)
    ['a', 'b']
    """
    state = get_state(split_model(model)[0])
    return list(state.adapters) if state else []


def active_adapter(model):
    """The name of the adapter that calls and training use.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            Any model, adapted or not.

    Returns:
        str (an adapter's or a fusion's name), a `tfa.Stack` /
        `tfa.Parallel` when several adapters are active, or `None` when the
        model has no adapter or adapters are disabled.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> _ = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    >>> _ = tfa.add_adapter(
    ...     backbone, tfa.IA3Config(), name="b", activate=False)
    >>> tfa.active_adapter(backbone)
    'a'
    """
    state = get_state(split_model(model)[0])
    if state is None or not state.enabled:
        return None
    return state.composition or state.active
