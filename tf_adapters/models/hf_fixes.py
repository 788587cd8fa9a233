"""Fixes to keras-hub's conversion of Hugging Face checkpoints.

keras-hub 0.32's converters (`keras_hub/src/utils/transformers/`) get two
things wrong that change outputs: the Llama converter ignores
`rms_norm_eps`, and the Mistral converter passes every weight through
float16 (logits off by about 1e-4 on a tiny model). `fix_hf_conversion`
repairs a converted backbone from the same folder; `load_base` calls it.
"""

import json
import os

import numpy as np

from tf_adapters.compat.layers import walk_layers
from tf_adapters.models.hf_names import hf_modules
from tf_adapters.models.weights import assign

# keras-hub variable path ← Hugging Face tensor, per decoder layer `{i}`,
# for the families whose weights are re-read (Mistral's layout).
_LLAMA_NORMS = (
    (
        "transformer_layer_{i}/self_attention_layernorm/scale",
        "model.layers.{i}.input_layernorm.weight",
    ),
    (
        "transformer_layer_{i}/feedforward_layernorm/scale",
        "model.layers.{i}.post_attention_layernorm.weight",
    ),
)
REREAD = ("mistral",)


def hf_config(folder):
    """The Hugging Face `config.json` of `folder` (a dict with a
    `model_type`), or `None` for a keras-hub preset or no folder."""
    path = os.path.join(str(folder), "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    return config if "model_type" in config else None


def fix_hf_conversion(backbone, folder):
    """Repairs `backbone`, converted by keras-hub from Hugging Face folder
    `folder`: the norm epsilon, and float32 weights for Mistral. A
    keras-hub preset folder is left alone."""
    config = hf_config(folder)
    if config is None:
        return
    eps = config.get("rms_norm_eps")
    if eps is not None:
        for layer in walk_layers(backbone):
            if hasattr(layer, "epsilon") and type(layer).__name__.endswith(
                ("LayerNorm", "LayerNormalization")
            ):
                layer.epsilon = eps
    if config["model_type"] in REREAD:
        _reread_weights(backbone, folder, config)


def _reread_weights(backbone, folder, config):
    """Assigns every weight again from the safetensors, in float32."""
    tensors = read_safetensors(folder)
    variables = {v.path: v for v in backbone.weights}

    def put(path, value):
        variable = variables[path]
        value = np.asarray(value)
        if value.size == int(np.prod(variable.shape)):
            value = value.reshape(variable.shape)  # heads split out
        assign(variable, value, folder)

    put("token_embedding/embeddings", tensors["model.embed_tokens.weight"])
    if "lm_head.weight" in tensors and not config.get("tie_word_embeddings"):
        put("token_embedding/reverse_embeddings", tensors["lm_head.weight"].T)
    for m in hf_modules(backbone):
        weight = tensors[m.hf_name + ".weight"]
        if m.rows is not None:
            weight = weight[m.rows[0] : m.rows[1]]
        put(m.path + "/kernel", weight.T)
    for i in range(backbone.num_layers):
        for path, key in _LLAMA_NORMS:
            put(path.format(i=i), tensors[key.format(i=i)])
    put("sequence_output_layernorm/scale", tensors["model.norm.weight"])


def read_safetensors(folder):
    """`{name: array}` of a Hugging Face folder's `model.safetensors` (or
    the shards its `model.safetensors.index.json` lists)."""
    from safetensors import safe_open

    single = os.path.join(str(folder), "model.safetensors")
    index = single + ".index.json"
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        path = os.path.join(str(folder), name)
        try:
            with safe_open(path, framework="np") as f:
                for key in f.keys():
                    tensors[key] = f.get_tensor(key)
        except Exception as e:  # safetensors raises its own SafetensorError
            raise ValueError(f"{path} cannot be read: {e}.") from None
    return tensors
