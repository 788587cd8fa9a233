"""PEFT adapter folders (`adapter_config.json` + `adapter_model.safetensors`)
read as tf_adapters adapters, and written from them.

Reading turns a PEFT LoRA, IA3 or prompt-tuning adapter into the config and
weight arrays of the equivalent tf_adapters adapter (same outputs); writing
does the reverse. Module names map to keras-hub layer paths through
`tf_adapters.models.hf_names`. Nothing is dropped silently: an option,
module or tensor that tf_adapters cannot represent exactly is refused by
name. Nothing here imports torch or peft.
"""

import collections
import json
import os
import re

import numpy as np

from tf_adapters.core import safetensors_file
from tf_adapters.core.integrity import load_json
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.validation import check_weight_arrays
from tf_adapters.interop.peft_config import CONFIG_FILE
from tf_adapters.interop.peft_config import read_peft_config
from tf_adapters.interop.peft_lora import lora_to_peft
from tf_adapters.interop.peft_lora import read_lora
from tf_adapters.interop.peft_modules import PREFIX
from tf_adapters.interop.peft_modules import check_in
from tf_adapters.interop.peft_modules import check_out
from tf_adapters.interop.peft_modules import module_table
from tf_adapters.interop.peft_modules import modules_of
from tf_adapters.interop.peft_modules import out_rows
from tf_adapters.interop.peft_modules import target_names
from tf_adapters.methods.ia3 import IA3Config
from tf_adapters.methods.ia3.plan import scales_input
from tf_adapters.methods.lora import LoraConfig
from tf_adapters.methods.prompt_tuning import PromptTuningConfig
from tf_adapters.models.hf_names import prompt_row_scale

WEIGHTS_FILE = "adapter_model.safetensors"
PICKLED_WEIGHTS_FILE = "adapter_model.bin"
_ADVICE = "Save the adapter again with PEFT, or copy the folder again"

# Fields that do not change what a loaded adapter computes (documentation,
# initialisation, training-time bookkeeping).
_INERT = {
    "peft_type",
    "task_type",
    "base_model_name_or_path",
    "revision",
    "inference_mode",
    "auto_mapping",
    "peft_version",
    "init_ia3_weights",
    "loftq_config",
    "eva_config",
    "corda_config",
    "megatron_core",
    "runtime_config",
    "ensure_weight_tying",
    "qalora_group_size",
    "layers_pattern",
    "exclude_modules",
    "target_modules",
    "layers_to_transform",
    "feedforward_modules",
    "fan_in_fan_out",
    "prompt_tuning_init",
    "prompt_tuning_init_text",
    "tokenizer_name_or_path",
    "tokenizer_kwargs",
    "num_attention_heads",
    "num_layers",
    "token_dim",
}
# Fields read into the tf_adapters config, per method.
_READ = {
    "LORA": {"r", "lora_alpha", "lora_dropout", "use_rslora", "bias"}
    | {"rank_pattern", "alpha_pattern", "use_dora", "init_lora_weights"},
    "IA3": set(),
    "PROMPT_TUNING": {"num_virtual_tokens", "num_transformer_submodules"},
}


def is_peft_folder(path):
    """Whether `path` is a folder holding a PEFT adapter: an
    `adapter_config.json` with a `peft_type`, or (whatever that file
    holds) PEFT's weights and no tf_adapters weights."""
    folder = str(path)
    if not os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        return False
    if any(
        os.path.isfile(os.path.join(folder, name))
        for name in (WEIGHTS_FILE, PICKLED_WEIGHTS_FILE)
    ) and not os.path.isfile(os.path.join(folder, "adapter_weights.npz")):
        return True
    try:
        meta = load_json(os.path.join(folder, CONFIG_FILE), "", "")
    except ValueError:
        return False
    return "peft_type" in meta


def read_peft_adapter(path, backbone):
    """Reads PEFT folder `path` as a tf_adapters adapter for `backbone`.

    Returns:
        `(config, arrays)`: the tf_adapters config and `{variable key:
        array}` keyed as in tf_adapters checkpoints.

    Raises:
        CorruptFileError: a damaged or inconsistent file, naming it.
        ValueError: naming the option, module, tensor or shape that cannot
            be represented exactly.
    """
    meta = read_peft_config(path)
    method = meta["peft_type"]
    _refuse_unknown_options(path, meta, method)
    tensors = _read_tensors(path)
    if method == "PROMPT_TUNING":
        return _read_prompt(path, meta, tensors, backbone)
    modules = _group_by_module(path, tensors, method)
    targets = module_table(backbone)
    for module in modules:
        if module not in targets:
            raise ValueError(
                f"{path}: module {module!r} is not an adaptable projection of "
                f"{type(backbone).__name__} (known modules look like "
                f"{next(iter(targets))!r}); it was trained on another "
                "architecture."
            )
    for module in modules:
        if not _selected(meta, module):
            raise ValueError(
                f"{path}: the weights hold module {module!r}, which "
                f"{CONFIG_FILE}'s target_modules / layers_to_transform do not "
                "select (PEFT would ignore those weights); the file is "
                "inconsistent."
            )
    if method == "LORA":
        return read_lora(path, meta, modules, targets, backbone)
    return _read_ia3(path, meta, modules, targets)


def _is_default(value):
    return value in (None, False, "", "none") or value == [] or value == {}


def _refuse_unknown_options(path, meta, method):
    for key, value in sorted(meta.items()):
        if key in _INERT or key in _READ[method] or _is_default(value):
            continue
        raise ValueError(
            f"{os.path.join(str(path), CONFIG_FILE)}: PEFT option "
            f"{key}={value!r} has no exact tf_adapters equivalent, so the "
            "adapter is not loaded (nothing is dropped silently)."
        )
    if method == "LORA" and meta.get("bias", "none") != "none":
        raise ValueError(
            f"{path}: PEFT option bias={meta['bias']!r} trains the base "
            "layers' biases; tf_adapters reads LoRA adapters with "
            "bias='none' only."
        )


def _read_tensors(path):
    weights = os.path.join(str(path), WEIGHTS_FILE)
    if not os.path.isfile(weights):
        if os.path.isfile(os.path.join(str(path), PICKLED_WEIGHTS_FILE)):
            raise ValueError(
                f"{path} holds {PICKLED_WEIGHTS_FILE}, a pickled torch file, "
                "which tf_adapters does not unpickle; save the adapter with "
                "`safe_serialization=True` (PEFT's default) to get "
                f"{WEIGHTS_FILE}."
            )
        raise FileNotFoundError(f"{weights} not found.")
    header = safetensors_file.read_header(
        weights, "PEFT adapter weights", _ADVICE
    )
    tensors = safetensors_file.read_tensors(header)
    check_weight_arrays(weights, tensors)
    return tensors


_SUFFIXES = {
    "LORA": (".lora_A.weight", ".lora_B.weight"),
    "IA3": (".ia3_l",),
}
# Tensors a module may have besides those (DoRA's magnitude).
_OPTIONAL = {"LORA": (".lora_magnitude_vector",), "IA3": ()}


def _group_by_module(path, tensors, method):
    """`{module name: {suffix: array}}`; refuses any other tensor."""
    modules = collections.defaultdict(dict)
    for key, array in tensors.items():
        name = key.removeprefix(PREFIX)
        for suffix in _SUFFIXES[method] + _OPTIONAL[method]:
            if name.endswith(suffix):
                modules[name.removesuffix(suffix)][suffix] = array
                break
        else:
            raise ValueError(
                f"{os.path.join(str(path), WEIGHTS_FILE)}: tensor {key!r} is "
                f"not part of a plain PEFT {method} adapter on linear layers "
                "(e.g. DoRA magnitudes, embedding LoRA, modules_to_save or "
                "biases); tf_adapters cannot represent it exactly."
            )
    for module, parts in modules.items():
        missing = set(_SUFFIXES[method]) - set(parts)
        if missing:
            raise ValueError(
                f"{path}: module {module!r} lacks {sorted(missing)[0]!r}."
            )
    return dict(modules)


def _selected(meta, module):
    """PEFT's target rule (`check_target_module_exists`): a regex string is
    a full match; a list matches a name or a `.`-suffix, then
    `layers_to_transform` keeps the listed layer indices."""
    targets = meta.get("target_modules")
    if targets is None or targets == "all-linear":
        return True
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    if module not in targets and not any(
        module.endswith("." + t) for t in targets
    ):
        return False
    indices = meta.get("layers_to_transform")
    if indices is None or indices == []:
        return True
    indices = [indices] if isinstance(indices, int) else indices
    patterns = meta.get("layers_pattern") or ["layers", "h", "blocks", "layer"]
    patterns = [patterns] if isinstance(patterns, str) else patterns
    for pattern in patterns:
        found = re.match(rf".*\.{pattern}\.(\d+)\.", module)
        if found:
            return int(found.group(1)) in indices
    return False


def _read_ia3(path, meta, modules, targets):
    arrays, scaled_input = {}, []
    for module, parts in sorted(modules.items()):
        vector = parts[".ia3_l"]
        feedforward = vector.ndim == 2 and vector.shape[0] == 1
        if vector.ndim != 2 or (not feedforward and vector.shape[1] != 1):
            raise ValueError(
                f"{path}: module {module!r} has an ia3_l of shape "
                f"{vector.shape}; PEFT writes (out, 1) or (1, in)."
            )
        if feedforward:
            for m, spec in targets[module]:
                check_in(path, module, m, spec, vector.shape[1])
                arrays[f"{m.path}/ia3_scale"] = vector[0].reshape(
                    spec.dims(spec.contracted)
                )
                scaled_input.append(m.path)
            continue
        check_out(path, module, targets[module], vector.shape[0])
        for m, spec in targets[module]:
            start, stop = out_rows(m, spec)
            arrays[f"{m.path}/ia3_scale"] = vector[start:stop, 0].reshape(
                spec.dims(spec.kernel_out)
            )
    paths = sorted(key.removesuffix("/ia3_scale") for key in arrays)
    config = IA3Config(target_layers=paths, feedforward_layers=scaled_input)
    return config, arrays


def _read_prompt(path, meta, tensors, backbone):
    if meta.get("num_transformer_submodules", 1) not in (1, None):
        raise ValueError(
            f"{path}: num_transformer_submodules="
            f"{meta['num_transformer_submodules']} is an encoder-decoder "
            "prompt; tf_adapters adapts decoder-only models."
        )
    if set(tensors) != {"prompt_embeddings"}:
        extra = sorted(set(tensors) - {"prompt_embeddings"})
        raise ValueError(
            f"{path}: a PEFT prompt-tuning file holds one tensor, "
            f"'prompt_embeddings'; this one holds {extra or 'none'}."
        )
    table = tensors["prompt_embeddings"]
    hidden = backbone.token_embedding.output_dim
    count = meta.get("num_virtual_tokens")
    if table.ndim != 2 or table.shape[1] != hidden or table.shape[0] != count:
        raise ValueError(
            f"{path}: prompt_embeddings has shape {table.shape}; this model "
            f"needs ({count}, {hidden}) (num_virtual_tokens, hidden size)."
        )
    config = PromptTuningConfig(num_virtual_tokens=int(count), init="random")
    return config, {_prompt_key(backbone): table / prompt_row_scale(backbone)}


def write_peft_adapter(folder, backbone, config, arrays, base_model=None):
    """Writes `arrays` (a tf_adapters adapter's variables, keyed as in its
    checkpoints) as a PEFT adapter into existing folder `folder`.

    Raises:
        ValueError: for an adapter PEFT cannot hold exactly, naming why.
    """
    from safetensors.numpy import save_file

    if config.trainable_layers:
        raise ValueError(
            "The adapter also trains base layers (`trainable_layers`="
            f"{config.trainable_layers}); PEFT's format holds them only as "
            "`modules_to_save`, which tf_adapters does not write. Save it in "
            "the tf_adapters format."
        )
    if isinstance(config, LoraConfig):
        meta, tensors = lora_to_peft(backbone, config, arrays)
    elif isinstance(config, IA3Config):
        meta, tensors = _ia3_to_peft(backbone, config, arrays)
    elif isinstance(config, PromptTuningConfig):
        meta, tensors = _prompt_to_peft(backbone, config, arrays)
    elif config.method == "prefix_tuning":
        raise ValueError(
            "Prefix-tuning adapters are not written in PEFT's format: PEFT "
            "feeds the prefix as past key/values, which shifts the positions "
            "of the real tokens, so the same weights would compute something "
            "else there. Save it in the tf_adapters format."
        )
    else:
        raise ValueError(
            f"PEFT has no {type(config).__name__} adapters (bottleneck "
            "adapters are AdapterHub's, not PEFT's); save it in the "
            "tf_adapters format."
        )
    meta = {
        "base_model_name_or_path": base_model,
        "task_type": "CAUSAL_LM",
        "inference_mode": True,
        **meta,
    }
    save_file(
        {key: np.ascontiguousarray(v, "float32") for key, v in tensors.items()},
        os.path.join(folder, WEIGHTS_FILE),
        metadata={"format": "pt"},
    )
    with open(os.path.join(folder, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)


def _ia3_to_peft(backbone, config, arrays):
    modules, every = modules_of(backbone, arrays, "/ia3_scale")
    tensors, feedforward = {}, []
    for module, parts in sorted(modules.items()):
        inputs = {
            m.path: scales_input(backbone, config, m.path)
            for m, _, on in parts
            if on
        }
        if any(inputs.values()):
            vectors = [arrays[f"{p}/ia3_scale"].reshape(-1) for p in inputs]
            if (
                not all(inputs.values())
                or len(inputs) != len(parts)
                or not (all(np.array_equal(v, vectors[0]) for v in vectors))
            ):
                raise ValueError(
                    f"The IA3 input scales of {sorted(inputs)} differ, but "
                    f"PEFT's {module!r} is one layer with one input scale."
                )
            tensors[f"{PREFIX}{module}.ia3_l"] = vectors[0][None, :]
            feedforward.append(module)
            continue
        vector = np.ones((out_rows(*parts[-1][:2])[1],), "float32")
        for m, spec, on in parts:
            if on:
                start, stop = out_rows(m, spec)
                vector[start:stop] = arrays[f"{m.path}/ia3_scale"].reshape(-1)
        tensors[f"{PREFIX}{module}.ia3_l"] = vector[:, None]
    targets = target_names(every, modules)
    short_feedforward = target_names(every, feedforward)
    if set(short_feedforward) <= set(targets):  # PEFT wants a subset
        feedforward = short_feedforward
    else:
        targets, feedforward = sorted(modules), sorted(feedforward)
    meta = {
        "peft_type": "IA3",
        "target_modules": targets,
        "feedforward_modules": feedforward,
        "fan_in_fan_out": type(backbone).__name__ == "GPT2Backbone",
    }
    return meta, tensors


def _prompt_key(backbone):
    """The checkpoint key of a prompt table on `backbone`'s token embedding
    (`token_embedding/...`, or `embeddings/token_embedding/...` in OPT)."""
    embedding = backbone.token_embedding
    path = next(s.path for s in iter_slots(backbone) if s.base is embedding)
    return f"{path}/prompt_embedding/prompt_embeddings"


def _prompt_to_peft(backbone, config, arrays):
    table = arrays[_prompt_key(backbone)] * prompt_row_scale(backbone)
    meta = {
        "peft_type": "PROMPT_TUNING",
        "num_virtual_tokens": config.num_virtual_tokens,
        "token_dim": int(table.shape[1]),
        "num_transformer_submodules": 1,
        "num_layers": backbone.num_layers,
        "prompt_tuning_init": "RANDOM",
    }
    return meta, {"prompt_embeddings": table}
