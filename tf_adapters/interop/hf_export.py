"""Hugging Face checkpoints of keras-hub models with their adapter merged in.

keras-hub's own exporter (`CausalLM.export_to_transformers`) writes the
config, weights and tokenizer of a few families, but finds them by exact
class name (so subclasses and adapted models are refused), reads weights
from the layers it expects in their slots (where our adapter wrappers sit),
and leaves out or gets wrong some fields. `export_hf` calls keras-hub's
per-family functions (`tf_adapters.compat.hf_export`) and fixes those.
"""

import contextlib
import json
import os

import keras
import numpy as np

from tf_adapters.compat import hf_export as keras_hub_export
from tf_adapters.compat.layers import walk_layers
from tf_adapters.compat.tracking import replace_sublayer
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.atomic import atomic_directory
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.state import get_state
from tf_adapters.injection.lifecycle import adapter_layers
from tf_adapters.injection.lifecycle import split_model
from tf_adapters.injection.unload import temporarily_merged

# The families whose export was checked against `transformers` (equal
# logits) and the Hugging Face class each becomes.
ARCHITECTURES = {
    "Llama3Backbone": "LlamaForCausalLM",
    "GemmaBackbone": "GemmaForCausalLM",
    "GPT2Backbone": "GPT2LMHeadModel",
    "QwenBackbone": "Qwen2ForCausalLM",
}

# What to do instead, per adapter method that cannot merge.
UNMERGEABLE_ADVICE = {
    "prompt_tuning": (
        "save the adapter for PEFT with `tfa.save_adapter(model, path, "
        'format="peft")` and load it onto the Hugging Face base model with '
        "`peft.PeftModel.from_pretrained`, or serve the Keras model with "
        "`tfa.export_saved_model(model, ...)`"
    ),
}
DEFAULT_ADVICE = (
    "serve the Keras model with `tfa.export_saved_model(model, ...)` "
    "(which keeps unmergeable adapters unmerged), or activate a LoRA / IA3 "
    "adapter (`tfa.set_active_adapter`) or disable adapters "
    "(`tfa.disable_adapters`) to export the base weights"
)


def export_hf(model, path, overwrite=True):
    """Writes a Hugging Face checkpoint folder of a keras-hub model.

    The folder holds `config.json` and `model.safetensors` (and, for a
    `CausalLM` with a preprocessor, its tokenizer files), which
    `transformers.AutoModelForCausalLM.from_pretrained(path)` loads into a
    model with the same logits. The active adapter (LoRA or IA3) is merged
    into the exported weights; the model itself is left exactly as it was
    (its weights unmerged, its adapters in place). Inactive or disabled
    adapters are left out.

    Families: Llama 3 (with subclasses such as the embedded SmolLM2's
    `GGUFLlamaBackbone`), Gemma (1), GPT-2 and Qwen 2, the keras-hub
    families whose export was checked against `transformers`. The folder is
    written atomically: an error never leaves a half-written one.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            The model, with or without adapters. A backbone is exported
            without tokenizer files.
        path: str. The folder to write.
        overwrite: bool. Replace an existing checkpoint folder (one holding
            a `config.json`). Defaults to `True`.

    Returns:
        str. The absolute path of the folder written.

    Raises:
        ValueError: if the family cannot be exported, the active adapter
            cannot be merged (bottleneck, prompt tuning), or base layers are
            quantized.

    Example:
    >>> import os, tempfile, keras_hub, tf_adapters as tfa
    >>> vocab = {"<|endoftext|>": 0, "a": 1, "t": 2, "Ġ": 3, "Ġa": 4,
    ...          "Ġt": 5, "at": 6}
    >>> tokenizer = keras_hub.models.GPT2Tokenizer(
    ...     vocabulary=vocab, merges=["Ġ a", "Ġ t", "a t"])
    >>> causal_lm = keras_hub.models.GPT2CausalLM(
    ...     keras_hub.models.GPT2Backbone(
    ...         vocabulary_size=7, num_layers=1, num_heads=2, hidden_dim=8,
    ...         intermediate_dim=16, max_sequence_length=32),
    ...     preprocessor=keras_hub.models.GPT2CausalLMPreprocessor(
    ...         tokenizer, sequence_length=8))
    >>> causal_lm = tfa.add_adapter(causal_lm, tfa.LoraConfig(rank=2))
    >>> path = tfa.export_hf(causal_lm, os.path.join(tempfile.mkdtemp(), "hf"))
    >>> sorted(os.listdir(path))  # doctest: +NORMALIZE_WHITESPACE
    ['config.json', 'merges.txt', 'model.safetensors',
     'tokenizer_config.json', 'vocab.json']
    >>> tfa.list_adapters(causal_lm)  # the model keeps its adapter
    ['default']
    """
    backbone, task = split_model(model)
    family = _family(backbone)
    tokenizer, tokenizer_family = _tokenizer(task)
    _check_adapters(backbone)
    _check_not_quantized(backbone)
    _CHECKS.get(family, _no_check)(backbone)
    config = _config(backbone, family, tokenizer)
    weights = _merged_weights(model, backbone, family, config)
    with atomic_directory(
        path, overwrite=overwrite, marker="config.json"
    ) as tmp:
        _write_json(os.path.join(tmp, "config.json"), config)
        _save_safetensors(weights, os.path.join(tmp, "model.safetensors"))
        if tokenizer is not None:
            _write_tokenizer(task.preprocessor, tokenizer_family, tmp)
    return os.path.abspath(path)


# --- What can be exported -------------------------------------------------


def _family(backbone):
    family = keras_hub_export.exporter_family(backbone)
    if family not in ARCHITECTURES:
        known = keras_hub_export.known_families()
        detail = (
            f"keras-hub's exporter knows {family}, but its export was not "
            "checked against `transformers`"
            if family
            else f"keras-hub's exporter knows only {known}"
        )
        raise ValueError(
            f"Cannot export a {type(backbone).__name__} to a Hugging Face "
            f"checkpoint: {detail}. Families that export: "
            f"{_family_names()}. Export this model with "
            "`tfa.export_saved_model` or `model.save_to_preset` instead."
        )
    return family


def _family_names():
    return ", ".join(name.removesuffix("Backbone") for name in ARCHITECTURES)


def _tokenizer(task):
    """`(tokenizer, its exporter family)`, or `(None, None)`."""
    preprocessor = getattr(task, "preprocessor", None)
    tokenizer = getattr(preprocessor, "tokenizer", None)
    if tokenizer is None:
        return None, None
    family = keras_hub_export.exporter_family(tokenizer, "tokenizer")
    if family is None:
        raise ValueError(
            f"Cannot export the tokenizer {type(tokenizer).__name__} to "
            "Hugging Face files; keras-hub's exporter knows only "
            f"{keras_hub_export.known_families('tokenizer')}. Export the "
            "weights alone with `export_hf(model.backbone, path)`."
        )
    return tokenizer, family


def _check_adapters(backbone):
    """Refuses an active adapter that cannot merge into the weights."""
    state = get_state(backbone)
    if state is None or state.active is None or not state.enabled:
        return
    entry = state.adapters[state.active]
    if entry.merged:
        return
    blocked = sorted(
        {
            type(layer).__name__
            for layer in adapter_layers(backbone, state.active)
            if not getattr(layer, "mergeable", False)
        }
    )
    if blocked:
        method = entry.config.method
        advice = UNMERGEABLE_ADVICE.get(method, DEFAULT_ADVICE)
        raise ValueError(
            f"Cannot export adapter {state.active!r} ({method}) to a Hugging "
            f"Face checkpoint: its layers ({', '.join(blocked)}) add "
            "computation that no weight of the Hugging Face model can hold; "
            "only LoRA and IA3 merge. Instead, "
            f"{advice}."
        )


def _check_not_quantized(backbone):
    quantized = sorted(
        {
            layer.name
            for layer in walk_layers(backbone)
            if getattr(layer, "quantization_mode", None)
        }
    )
    if quantized:
        raise ValueError(
            "Cannot export a quantized model to a Hugging Face checkpoint "
            f"(quantized layers: {', '.join(quantized[:3])}"
            f"{' ...' if len(quantized) > 3 else ''}): the exporter writes "
            "float weights. Export the float model (before "
            "`model.quantize`)."
        )


def _refuse(backbone, what):
    raise ValueError(
        f"Cannot export this {type(backbone).__name__} to a Hugging Face "
        f"checkpoint: {what}, which the Hugging Face model it would become "
        "does not compute the same way. Export it with "
        "`tfa.export_saved_model` instead."
    )


def _check_llama3(backbone):
    factor = backbone.rope_position_scaling_factor
    if factor not in (None, 1, 1.0):
        # keras-hub's LlamaRotaryEmbedding (0.32) ignores it.
        _refuse(backbone, f"`rope_position_scaling_factor={factor}`")


def _check_gemma(backbone):
    gemma2 = {
        "use_post_ffw_norm": backbone.use_post_ffw_norm,
        "use_post_attention_norm": backbone.use_post_attention_norm,
        "final_logit_soft_cap": backbone.final_logit_soft_cap,
        "attention_logit_soft_cap": backbone.attention_logit_soft_cap,
        "use_sliding_window_attention": (backbone.use_sliding_window_attention),
    }
    used = [f"`{k}={v}`" for k, v in gemma2.items() if v]
    if used:
        _refuse(backbone, f"it is a Gemma 2 model ({', '.join(used)})")
    if not backbone.query_head_dim_normalize:
        _refuse(backbone, "`query_head_dim_normalize=False`")


def _check_qwen(backbone):
    if backbone.use_sliding_window_attention:
        _refuse(backbone, "`use_sliding_window_attention=True`")


def _no_check(backbone):
    return None


_CHECKS = {
    "Llama3Backbone": _check_llama3,
    "GemmaBackbone": _check_gemma,
    "QwenBackbone": _check_qwen,
}


# --- config.json ------------------------------------------------------------


def _config(backbone, family, tokenizer):
    """keras-hub's config with the fields it leaves out or gets wrong."""
    config = keras_hub_export.backbone_config(backbone, family)
    config["architectures"] = [ARCHITECTURES[family]]
    config.setdefault(
        "torch_dtype",
        keras.backend.standardize_dtype(backbone.dtype_policy.compute_dtype),
    )
    _CONFIG_FIXES.get(family, _no_fix)(config, backbone)
    if tokenizer is not None:
        config.update(_special_token_ids(tokenizer))
    else:
        # keras-hub's fixed ids (GPT-2's 50256) may lie outside a small
        # vocabulary, which `transformers` warns about and `generate`
        # rejects; `None` also stops it from filling in its own defaults.
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = config.get(key)
            if value is not None and value >= backbone.vocabulary_size:
                config[key] = None
    return config


def _special_token_ids(tokenizer):
    ids = {}
    for key, token in (
        ("bos_token_id", getattr(tokenizer, "start_token", None)),
        ("eos_token_id", getattr(tokenizer, "end_token", None)),
    ):
        if token is not None:
            ids[key] = tokenizer.token_to_id(token)
    return ids


def _fix_gemma_config(config, backbone):
    config.update(
        {
            "rms_norm_eps": backbone.layer_norm_epsilon,
            # keras-hub's Gemma uses tanh-approximated GELU and a fixed RoPE
            # wavelength (`GemmaAttention`).
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_activation": "gelu_pytorch_tanh",
            "rope_theta": 10000.0,
            "attention_bias": False,
        }
    )


def _fix_qwen_config(config, backbone):
    config["use_sliding_window"] = False
    factor = backbone.rope_scaling_factor
    if factor not in (None, 1, 1.0):
        config["rope_scaling"] = {"rope_type": "linear", "factor": factor}


def _no_fix(config, backbone):
    return None


_CONFIG_FIXES = {
    "GemmaBackbone": _fix_gemma_config,
    "QwenBackbone": _fix_qwen_config,
}


# --- model.safetensors ------------------------------------------------------


def _merged_weights(model, backbone, family, config):
    """`{Hugging Face name: array}` with the active adapter merged in, read
    while the base layers sit in their slots; the model is restored after."""
    with temporarily_merged(model), _base_layers_in_slots(backbone):
        weights = keras_hub_export.backbone_weights(backbone, family)
        weights = {k: keras.ops.convert_to_numpy(v) for k, v in weights.items()}
        _WEIGHT_FIXES.get(family, _no_fix)(weights, backbone)
    if config.get("tie_word_embeddings", True):
        # Hugging Face ties the head to the embedding when loading.
        weights.pop("lm_head.weight", None)
    return weights


@contextlib.contextmanager
def _base_layers_in_slots(backbone):
    """Takes every adapter wrapper out of its slot for the block, putting
    the layer it wraps there, then puts the wrappers back."""
    moved = [
        slot
        for slot in iter_slots(backbone)
        if isinstance(slot.layer, AdapterLayer)
    ]
    done = []
    try:
        for slot in moved:
            replace_sublayer(slot.parent, slot.attr, slot.layer, slot.base)
            done.append(slot)
        yield
    finally:
        for slot in reversed(done):
            replace_sublayer(slot.parent, slot.attr, slot.base, slot.layer)


def _fix_gemma_weights(weights, backbone):
    """Query, key and value kernels for any head count and head size.

    keras-hub (0.32) writes `key_dense.kernel[0]` (right for one key/value
    head only) and reshapes the query kernel as if `hidden_dim` equalled
    `num_query_heads * head_dim`.
    """
    for i in range(backbone.num_layers):
        attention = backbone.get_layer(f"decoder_block_{i}").attention
        prefix = f"model.layers.{i}.self_attn"
        for name, layer in (
            ("q_proj", attention.query_dense),
            ("k_proj", attention.key_dense),
            ("v_proj", attention.value_dense),
        ):
            # (heads, hidden, head_dim) -> (heads * head_dim, hidden)
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            heads, hidden, head_dim = kernel.shape
            weights[f"{prefix}.{name}.weight"] = np.ascontiguousarray(
                kernel.transpose(0, 2, 1).reshape(heads * head_dim, hidden)
            )


_WEIGHT_FIXES = {"GemmaBackbone": _fix_gemma_weights}


def _save_safetensors(weights, path):
    from safetensors.numpy import save_file

    save_file(
        {k: np.ascontiguousarray(v) for k, v in weights.items()},
        path,
        metadata={"format": "pt"},
    )


# --- Tokenizer files ----------------------------------------------------------


def _write_tokenizer(preprocessor, family, folder):
    tokenizer = preprocessor.tokenizer
    keras_hub_export.write_tokenizer(tokenizer, family, folder)
    if family == "Llama3Tokenizer":
        add_bos = bool(getattr(preprocessor, "add_start_token", False))
        _fix_llama3_tokenizer(tokenizer, folder, add_bos)


def _fix_llama3_tokenizer(tokenizer, folder, add_bos):
    """Adds what keras-hub's tokenizer files leave out or get wrong.

    The tokenizer's `add_prefix_space`; the start token when the keras
    preprocessor adds one (keras-hub writes `add_bos_token: true`, which a
    `tokenizer.json` without post-processor ignores); and no
    `clean_up_tokenization_spaces` (keras-hub writes `true`, which would
    strip spaces before punctuation that keras's `detokenize` keeps).
    """
    path = os.path.join(folder, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    for step in data["pre_tokenizer"]["pretokenizers"]:
        if step["type"] == "ByteLevel":
            step["add_prefix_space"] = bool(tokenizer.add_prefix_space)
    if add_bos and tokenizer.start_token is not None:
        data["post_processor"] = _bos_template(tokenizer)
    _write_json(path, data)
    path = os.path.join(folder, "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config["add_bos_token"] = add_bos
    config["clean_up_tokenization_spaces"] = False
    _write_json(path, config)


def _bos_template(tokenizer):
    """A `tokenizers` post-processor that prepends the start token."""
    bos = tokenizer.start_token
    return {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": bos, "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {
            bos: {
                "id": bos,
                "ids": [tokenizer.token_to_id(bos)],
                "tokens": [bos],
            }
        },
    }


def _write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
