"""Fixes to keras-hub's conversion of Hugging Face checkpoints.

keras-hub 0.32's converters (`keras_hub/src/utils/transformers/`) get two
things wrong that change outputs: the Llama converter ignores
`rms_norm_eps`, and the Mistral converter passes every weight through
float16 (logits off by about 1e-4 on a tiny model). `fix_hf_conversion`
repairs a converted backbone from the same folder; `load_base` calls it.
"""

import os

import numpy as np

from tf_adapters.compat.layers import walk_layers
from tf_adapters.models.hf_convert.reading import SafetensorsLoader
from tf_adapters.models.hf_convert.reading import read_config_json
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
    if not os.path.isfile(os.path.join(str(folder), "config.json")):
        return None
    _, config = read_config_json(str(folder))
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
    variables = {v.path: v for v in backbone.weights}
    modules = hf_modules(backbone)
    out_features = {}  # a fused module's rows are its parts' rows together
    for m in modules:
        stop = (
            m.rows[1]
            if m.rows
            else int(np.prod(m.spec.dims(m.spec.kernel_out)))
        )
        out_features[m.hf_name] = max(out_features.get(m.hf_name, 0), stop)

    with SafetensorsLoader(str(folder)) as loader:

        def put(path, key, transpose=False):
            variable = variables[path]
            shape = tuple(variable.shape)
            hf_shape = shape[::-1] if transpose else shape
            value = loader.get(key, hf_shape)
            assign(variable, value.T if transpose else value, folder)

        put("token_embedding/embeddings", "model.embed_tokens.weight")
        tied = config.get("tie_word_embeddings")
        if loader.has("lm_head.weight") and not tied:
            put("token_embedding/reverse_embeddings", "lm_head.weight", True)
        for m in modules:
            spec = m.spec
            key = m.hf_name + ".weight"
            weight = loader.get(
                key,
                (
                    out_features[m.hf_name],
                    int(np.prod(spec.dims(spec.contracted))),
                ),
            )
            if m.rows is not None:
                weight = weight[m.rows[0] : m.rows[1]]
            kernel = variables[m.path + "/kernel"]
            assign(kernel, weight.T.reshape(kernel.shape), folder)
        for i in range(backbone.num_layers):
            for path, key in _LLAMA_NORMS:
                put(path.format(i=i), key.format(i=i))
        put("sequence_output_layernorm/scale", "model.norm.weight")
