"""Adapter-only checkpoints: the config as JSON, the weights as `.npz`.

A checkpoint holds only the adapter's variables (and those of any
`trainable_layers`), never the base model. Loading validates the file
(schema, version, names, shapes, dtypes, finite values) against the target
model before a single variable is assigned. Nothing here unpickles.
"""

import json
import os

import numpy as np

from tf_adapters.compat.class_swap import base_class_of
from tf_adapters.core.atomic import atomic_directory
from tf_adapters.core.integrity import corrupt
from tf_adapters.core.integrity import load_json
from tf_adapters.core.integrity import sha256_file
from tf_adapters.core.npz_file import load_npz
from tf_adapters.core.state import get_state
from tf_adapters.core.validation import check_weight_arrays
from tf_adapters.injection.api import attach_planned
from tf_adapters.injection.lifecycle import adapter_config
from tf_adapters.injection.lifecycle import adapter_variables
from tf_adapters.injection.lifecycle import split_model
from tf_adapters.injection.lifecycle import trainable_layer_variables
from tf_adapters.interop.keras_lora import is_keras_lora_file
from tf_adapters.interop.keras_lora import read_keras_lora
from tf_adapters.interop.peft_format import CONFIG_FILE as PEFT_CONFIG_FILE
from tf_adapters.interop.peft_format import is_peft_folder
from tf_adapters.interop.peft_format import read_peft_adapter
from tf_adapters.interop.peft_format import write_peft_adapter
from tf_adapters.methods.adalora.truncate import keep_unmasked
from tf_adapters.methods.registry import config_from_dict
from tf_adapters.methods.registry import planner_for

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_weights.npz"
FORMAT = "tf_adapters.adapter"
FORMAT_VERSION = 1
FORMATS = ("tf_adapters", "peft")
DEFAULT_NAME = "default"


def save_adapter(
    model,
    path,
    name=None,
    overwrite=True,
    format="tf_adapters",
    base_model_name_or_path=None,
):
    """Writes adapter `name` (default: the active one) to directory `path`.

    In the `"tf_adapters"` format the folder holds `adapter_config.json`
    (the adapter's config and the base model's description) and
    `adapter_weights.npz`: the adapter's variables (and those of its
    `trainable_layers`), never the base model. In the `"peft"` format it
    holds PEFT's `adapter_config.json` and `adapter_model.safetensors`,
    which `peft.PeftModel.from_pretrained` loads onto the Hugging Face
    model the base was converted from (LoRA, IA3 and prompt tuning; the
    same outputs).

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            The adapted model.
        path: str. Directory to write; replaced atomically.
        name: str. Which adapter. Defaults to the active adapter.
        overwrite: bool. Replace an existing checkpoint. Defaults to `True`.
        format: str. `"tf_adapters"` or `"peft"`. Defaults to
            `"tf_adapters"`.
        base_model_name_or_path: str. For `"peft"`: the Hugging Face model
            the adapter belongs on, recorded in its config (PEFT loads it
            from there when none is given). Defaults to `None`.

    Returns:
        `None`.

    Example:
    >>> import tempfile, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), "task")
    >>> path = tempfile.mkdtemp() + "/task"
    >>> tfa.save_adapter(backbone, path)
    >>> fresh = keras_hub.models.GPT2Backbone.from_config(
    ...     tfa.merge_and_unload(backbone).get_config())
    >>> fresh = tfa.load_adapter(fresh, path)
    >>> tfa.list_adapters(fresh)
    ['task']
    """
    check_format(format)
    backbone, task = split_model(model)
    state = get_state(backbone)
    if state is None or not state.adapters:
        raise ValueError("The model has no adapters to save.")
    name = name or state.active or next(iter(state.adapters))
    if name not in state.adapters:
        raise ValueError(
            f"No adapter named {name!r}. Adapters: {list(state.adapters)}."
        )
    config = adapter_config(model, name)
    variables = _checkpoint_variables(backbone, task, name, config)
    arrays = {key: np.asarray(var.numpy()) for key, var in variables.items()}
    # AdaLoRA: only the triplets its masks keep.
    config, arrays = keep_unmasked(backbone, name, config, arrays)
    if format == "peft":
        with atomic_directory(
            path, overwrite=overwrite, marker=PEFT_CONFIG_FILE
        ) as tmp:
            write_peft_adapter(
                tmp, backbone, config, arrays, base_model_name_or_path
            )
        return
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "adapter_name": name,
        "config": config.to_dict(),
        "base_model": _describe_base(backbone),
        "weights": {
            key: {"shape": list(a.shape), "dtype": str(a.dtype)}
            for key, a in arrays.items()
        },
    }
    with atomic_directory(path, overwrite=overwrite, marker=CONFIG_FILE) as tmp:
        np.savez(os.path.join(tmp, WEIGHTS_FILE), **arrays)
        # Loading verifies it: a flipped bit is caught, not only a cut.
        meta["weights_sha256"] = sha256_file(os.path.join(tmp, WEIGHTS_FILE))
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)


def check_format(value, name="format"):
    """Refuses an adapter format `save_adapter` cannot write."""
    if value not in FORMATS:
        raise ValueError(
            f"`{name}` must be one of {list(FORMATS)}. Received: "
            f"{name}={value!r}."
        )


def load_adapter(model, path, name=None, activate=True):
    """Adds the adapter saved at `path` to `model`, with its weights.

    Everything is checked before the model changes; a checkpoint for another
    base (family or shape) is rejected with the first mismatching layer.

    Args:
        model: a keras-hub `CausalLM` or `Backbone` (e.g. freshly loaded).
        path: str. The adapter: see below.
        name: str. Name to give the adapter. Defaults to the saved name.
        activate: bool. Make it the active adapter. Defaults to `True`.

    `path` may be a folder written by `save_adapter`, a PEFT adapter folder
    (`adapter_config.json` with a `peft_type`: LoRA, IA3 or prompt tuning,
    named `"default"` unless `name` is given) or a keras-hub `.lora.h5`
    file (`Backbone.save_lora_weights`, loaded as an equal LoRA; see
    `tf_adapters.interop.keras_lora`).

    Returns:
        The same model object, adapted.

    Raises:
        FileNotFoundError: `path` holds no adapter.
        CorruptFileError: a file of the adapter is damaged (truncated,
            altered, declaring sizes it does not hold), naming it.
        ValueError: an adapter for another model, or one tf_adapters
            cannot represent, naming the first mismatch.

    Example:
    >>> import os, tempfile, keras_hub, tf_adapters as tfa
    >>> kwargs = dict(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> trained = tfa.add_adapter(
    ...     keras_hub.models.GPT2Backbone(**kwargs), tfa.IA3Config(), "task")
    >>> path = os.path.join(tempfile.mkdtemp(), "task")
    >>> tfa.save_adapter(trained, path)
    >>> fresh = keras_hub.models.GPT2Backbone(**kwargs)
    >>> fresh = tfa.load_adapter(fresh, path, name="copy")
    >>> tfa.list_adapters(fresh), tfa.active_adapter(fresh)
    (['copy'], 'copy')
    """
    backbone, task = split_model(model)
    config, arrays, saved_name = read_any_adapter(path, backbone)
    name = name or saved_name
    state = get_state(backbone)
    if state is not None and name in state.adapters:
        raise ValueError(
            f"The model already has an adapter named {name!r}; pass another "
            "`name` to `load_adapter`."
        )
    base = _describe_base(backbone)
    try:
        plan = planner_for(config)(backbone, config, name)
    except ValueError as e:
        raise ValueError(
            f"Adapter {path} does not fit this {base['class']}: {e}"
        ) from None
    variables = dict(plan.variables())
    variables.update(trainable_layer_variables(model, config.trainable_layers))
    _check_against(path, arrays, variables, base)
    attach_planned(backbone, task, plan, activate)
    for key, var in variables.items():
        var.assign(arrays[key].astype(var.dtype))
    return model


def read_any_adapter(path, backbone):
    """`(config, arrays, name)` of the adapter at `path` in any format we
    read: a `save_adapter` folder, a PEFT folder or a keras-hub `.lora.h5`
    file. Nothing is attached."""
    path = os.fspath(path)
    if is_keras_lora_file(path):
        config, arrays = read_keras_lora(path, backbone)
        return config, arrays, DEFAULT_NAME
    if is_peft_folder(path):
        config, arrays = read_peft_adapter(path, backbone)
        return config, arrays, DEFAULT_NAME
    meta, config, arrays = read_checkpoint(path)
    base = _describe_base(backbone)
    saved_class = meta["base_model"].get("class")
    if saved_class != base["class"]:
        raise ValueError(
            f"Adapter checkpoint {path} was saved from a {saved_class}; this "
            f"model is a {base['class']}. Load it onto the model family it "
            "was trained on."
        )
    return config, arrays, meta["adapter_name"]


_ADVICE = (
    "Save the adapter again from the trained model, or copy the checkpoint "
    "folder again"
)


def read_checkpoint_config(path):
    """`(meta, config)` of a checkpoint directory: `read_checkpoint`'s
    checks of `adapter_config.json`, without reading the weights.

    Raises: as `read_checkpoint`, for the config file.
    """
    config_path = os.path.join(path, CONFIG_FILE)
    weights_path = os.path.join(path, WEIGHTS_FILE)
    for needed in (config_path, weights_path):
        if not os.path.isfile(needed):
            raise FileNotFoundError(
                f"{needed} not found: {path} is not an adapter checkpoint "
                "written by `tf_adapters.save_adapter`."
            )
    meta = load_json(config_path, "adapter config", _ADVICE)
    if meta.get("format") != FORMAT:
        raise corrupt(
            config_path,
            "adapter config",
            f"is not a tf_adapters adapter config (expected format {FORMAT!r})",
            _ADVICE,
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{config_path} has format_version "
            f"{meta.get('format_version')!r}; this tf_adapters reads "
            f"{FORMAT_VERSION}. Upgrade tf_adapters."
        )
    _check_meta(config_path, meta)
    config = _config_of(config_path, meta)
    return meta, config


def read_checkpoint(path):
    """Reads and validates a checkpoint directory, without a model.

    Returns:
        `(meta, config, arrays)`: the parsed `adapter_config.json`, the
        adapter config it holds and `{variable key: array}`.

    Raises:
        FileNotFoundError: `path` lacks one of the two files.
        CorruptFileError: either file is damaged or they disagree.
        ValueError: a checkpoint of a newer format version.
    """
    meta, config = read_checkpoint_config(path)
    weights_path = os.path.join(path, WEIGHTS_FILE)
    arrays = load_npz(
        weights_path, meta.get("weights_sha256"), "adapter weights", _ADVICE
    )
    if set(arrays) != set(meta["weights"]):
        extra = sorted(set(arrays) ^ set(meta["weights"]))
        raise corrupt(
            path,
            "adapter checkpoint",
            f"has a weights file and a config that disagree on variable "
            f"{extra[0]!r}",
            _ADVICE,
        )
    check_weight_arrays(weights_path, arrays)
    return meta, config, arrays


def _check_meta(config_path, meta):
    for field, kind in (
        ("adapter_name", str),
        ("config", dict),
        ("base_model", dict),
        ("weights", dict),
    ):
        if not isinstance(meta.get(field), kind):
            raise corrupt(
                config_path,
                "adapter config",
                f"lacks the field {field!r} (a JSON "
                f"{'string' if kind is str else 'object'})",
                _ADVICE,
            )


def _config_of(config_path, meta):
    try:
        return config_from_dict(meta["config"])
    except (ValueError, TypeError) as e:
        raise corrupt(
            config_path,
            "adapter config",
            f"holds an adapter config that cannot be built ({e}); it was "
            "altered, or written by a newer tf_adapters",
            _ADVICE,
        ) from None


def _check_against(path, arrays, variables, base):
    for key in sorted(variables):
        if key not in arrays:
            raise ValueError(
                f"Adapter checkpoint {path} has no weights for layer "
                f"{key!r} of this {base['class']}; it was saved for another "
                "model."
            )
    for key in sorted(arrays):
        if key not in variables:
            raise ValueError(
                f"Adapter checkpoint {path} holds weights for {key!r}, which "
                f"this {base['class']} does not have; it was saved for "
                "another model."
            )
        expected = tuple(variables[key].shape)
        if tuple(arrays[key].shape) != expected:
            raise ValueError(
                f"Adapter checkpoint {path}: layer {key!r} has shape "
                f"{tuple(arrays[key].shape)} in the checkpoint but {expected} "
                f"in this {base['class']}; it was saved for a base of "
                "another shape."
            )


def _checkpoint_variables(backbone, task, name, config):
    variables = adapter_variables(backbone, name)
    model = task if task is not None else backbone
    variables.update(trainable_layer_variables(model, config.trainable_layers))
    return variables


def _describe_base(backbone):
    cls = base_class_of(backbone)
    config = backbone.get_config()
    keep = {
        k: v
        for k, v in config.items()
        if isinstance(v, (int, float, str, bool)) and k not in ("name",)
    }
    return {"class": cls.__name__, "config": keep}
