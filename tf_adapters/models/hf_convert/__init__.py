"""Hugging Face OPT, GPT-NeoX and Phi-3 checkpoints → keras-hub backbones.

keras-hub 0.32 converts Hugging Face checkpoints of Llama, Mistral, Gemma,
Qwen, GPT-2 and others, but not of OPT, GPT-NeoX or Phi-3, although it has
backbones for them. This package converts the backbone weights of those three
families from a folder with `config.json` and `model.safetensors` (or a
sharded `model.safetensors.index.json`), in the style of keras-hub's own
converters (`keras_hub/src/utils/transformers/convert_*.py`): one function
maps the config, one ports the weights.

Options that the keras-hub backbone computes differently are refused with a
`ValueError` naming the option and the file, rather than converted into a
model that does not match the checkpoint: OPT with post-norm
(`do_layer_norm_before=False`), a removed final norm, `word_embed_proj_dim !=
hidden_size`, another activation than ReLU or an untied head; GPT-NeoX with
sequential residuals, an activation other than the tanh GELU, RoPE scaling or
an untied head; Phi-3 with another activation than SiLU, partial rotary
embeddings, a sliding window shorter than the context, RoPE scaling other
than LongRoPE, or a LongRoPE attention factor keras-hub computes differently.
Weights the checkpoint has and the backbone has no place for (a bias, say)
are refused too; biases or norm parameters the checkpoint leaves out
(`enable_bias=False`, `attention_bias=False`,
`layer_norm_elementwise_affine=False`) are their neutral values.

Dropout rates are mapped where keras-hub has one rate, and only matter in
training. Everything else is assigned through public APIs: variables are
found by their `variable.path`.

Layout: `reading` reads `config.json` and the safetensors and holds the
helpers the converters share; `opt`, `gpt_neox` and `phi3` each map one
family's config (`convert_config`) and port its weights
(`convert_weights`); this module dispatches on `model_type`.
"""

from tf_adapters.models.hf_convert import gpt_neox
from tf_adapters.models.hf_convert import opt
from tf_adapters.models.hf_convert import phi3
from tf_adapters.models.hf_convert.reading import HF_DEFAULTS
from tf_adapters.models.hf_convert.reading import INDEX_FILE
from tf_adapters.models.hf_convert.reading import SINGLE_FILE
from tf_adapters.models.hf_convert.reading import Config
from tf_adapters.models.hf_convert.reading import SafetensorsLoader
from tf_adapters.models.hf_convert.reading import read_config_json

__all__ = [
    "HF_DEFAULTS",
    "INDEX_FILE",
    "MODEL_TYPES",
    "SINGLE_FILE",
    "convert_hf_backbone",
]

MODEL_TYPES = ("opt", "gpt_neox", "phi3")

# `model_type` → the module that converts that family.
_CONVERTERS = {"opt": opt, "gpt_neox": gpt_neox, "phi3": phi3}


def convert_hf_backbone(folder, dtype=None):
    """Builds a keras-hub backbone from a Hugging Face OPT, GPT-NeoX or
    Phi-3 checkpoint folder.

    Only the backbone is converted (the head is checked: keras-hub's OPT and
    GPT-NeoX tie it to the token embedding, Phi-3 keeps it as the token
    embedding's `reverse_embeddings`). Tensors stored as float16 or bfloat16
    are widened to float32 before they are assigned.

    Args:
        folder: str. A folder with `config.json` and `model.safetensors`, or
            `model.safetensors.index.json` and its shards.
        dtype: string or `keras.mixed_precision.DTypePolicy`. The backbone's
            dtype; `None` uses Keras's default (float32).

    Returns:
        A built `keras_hub.models.OPTBackbone`, `GPTNeoXBackbone` or
        `Phi3Backbone` holding the checkpoint's weights.

    Raises:
        ValueError: the model type is not one of `MODEL_TYPES`, the config
            sets an option the keras-hub backbone computes differently, a
            weight is missing, has an unexpected shape or has no place in
            the backbone.

    Example:

    >>> import json, os, tempfile
    >>> import numpy as np
    >>> from safetensors.numpy import save_file
    >>> folder = tempfile.mkdtemp()
    >>> config = {
    ...     "model_type": "phi3", "vocab_size": 16, "hidden_size": 8,
    ...     "intermediate_size": 12, "num_hidden_layers": 1,
    ...     "num_attention_heads": 2, "num_key_value_heads": 1,
    ...     "max_position_embeddings": 32, "tie_word_embeddings": True,
    ... }
    >>> with open(os.path.join(folder, "config.json"), "w") as f:
    ...     json.dump(config, f)
    >>> shapes = {
    ...     "model.embed_tokens.weight": (16, 8),
    ...     "model.norm.weight": (8,),
    ...     "model.layers.0.input_layernorm.weight": (8,),
    ...     "model.layers.0.post_attention_layernorm.weight": (8,),
    ...     "model.layers.0.self_attn.qkv_proj.weight": (16, 8),
    ...     "model.layers.0.self_attn.o_proj.weight": (8, 8),
    ...     "model.layers.0.mlp.gate_up_proj.weight": (24, 8),
    ...     "model.layers.0.mlp.down_proj.weight": (8, 12),
    ... }
    >>> rng = np.random.default_rng(0)
    >>> tensors = {
    ...     k: rng.normal(size=s).astype("float32") for k, s in shapes.items()
    ... }
    >>> save_file(tensors, os.path.join(folder, "model.safetensors"))
    >>> backbone = convert_hf_backbone(folder)
    >>> type(backbone).__name__, backbone.num_key_value_heads
    ('Phi3Backbone', 1)
    >>> variables = {v.path: v for v in backbone.weights}
    >>> kernel = variables["transformer_layer_0/attention/key/kernel"]
    >>> tuple(kernel.shape)
    (8, 1, 4)
    >>> bool(np.array_equal(
    ...     kernel.numpy().reshape(8, 4),
    ...     tensors["model.layers.0.self_attn.qkv_proj.weight"][8:12].T,
    ... ))
    True
    """
    config_path, raw = read_config_json(folder)
    model_type = raw.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"{config_path}: model type {model_type!r} is not one of "
            f"{MODEL_TYPES} (keras-hub's own loader, "
            "`keras_hub.models.Backbone.from_preset`, handles many others)."
        )
    config = Config(raw, HF_DEFAULTS[model_type], config_path)
    converter = _CONVERTERS[model_type]
    backbone_config = converter.convert_config(config)
    with SafetensorsLoader(folder) as loader:
        backbone = converter.backbone_cls(**backbone_config, dtype=dtype)
        converter.convert_weights(backbone, loader, config)
        loader.check_all_used()
    return backbone
