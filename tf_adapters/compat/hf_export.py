"""keras-hub's Hugging Face exporter, reached by class instead of by name.

keras-hub writes Hugging Face checkpoints with
`keras_hub/src/utils/transformers/export/hf_exporter.py`: per family, a
config function, a weight-map function and a tokenizer-config function,
looked up by `type(backbone).__name__` / `type(tokenizer).__name__`. So a
subclass (our `GGUFLlamaBackbone`) or an adapted twin (`AdaptedGPT2Backbone`)
is refused. The functions here find the family through the class's MRO
and call keras-hub's per-family functions; `tf_adapters.interop.hf_export`
fixes what they leave out.

Relies on the module `keras_hub.src.utils.transformers.export.hf_exporter`
and its tables `MODEL_CONFIGS`, `MODEL_EXPORTERS`, `MODEL_TOKENIZER_CONFIGS`
and `build_llama3_tokenizer_json` (keras-hub 0.32+). Checked on keras-hub
0.32.0 and 0.33 (dev), whose exporters are identical. Public alternative:
`keras_hub.models.CausalLM.export_to_transformers(path)`, for objects of
keras-hub's own classes, with the omissions fixed afterwards.
"""

import json
import os

# Files `Tokenizer.save_assets` writes, renamed as Hugging Face expects.
_RENAMES = {
    "GemmaTokenizer": {"vocabulary.spm": "tokenizer.model"},
    "Gemma3Tokenizer": {"vocabulary.spm": "tokenizer.model"},
    "Gemma4Tokenizer": {"vocabulary.spm": "tokenizer.model"},
    "MistralTokenizer": {"vocabulary.spm": "tokenizer.model"},
    "QwenTokenizer": {"vocabulary.json": "vocab.json"},
    "Qwen3_5Tokenizer": {"vocabulary.json": "vocab.json"},
    "GPT2Tokenizer": {"vocabulary.json": "vocab.json"},
}


def _exporter():
    from keras_hub.src.utils.transformers.export import hf_exporter

    return hf_exporter


def exporter_family(obj, kind="backbone"):
    """The name of the keras-hub class of `obj` that keras-hub's exporter
    knows (the first in its class's MRO), or `None`.

    Args:
        obj: a keras-hub `Backbone` (`kind="backbone"`) or `Tokenizer`
            (`kind="tokenizer"`), of any subclass.
        kind: str. `"backbone"` or `"tokenizer"`.
    """
    table = known_families(kind)
    for cls in type(obj).__mro__:
        if cls.__name__ in table:
            return cls.__name__
    return None


def known_families(kind="backbone"):
    """The class names keras-hub's exporter handles, in its order."""
    exporter = _exporter()
    if kind == "backbone":
        return [
            name
            for name in exporter.MODEL_CONFIGS
            if name in exporter.MODEL_EXPORTERS
        ]
    return list(exporter.MODEL_TOKENIZER_CONFIGS)


def backbone_config(backbone, family):
    """keras-hub's Hugging Face `config.json` dict for `backbone`."""
    config = _exporter().MODEL_CONFIGS[family](backbone)
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    return dict(config)


def backbone_weights(backbone, family):
    """keras-hub's `{Hugging Face name: tensor}` map for `backbone`, with the
    causal LM head (`lm_head.weight`) included.

    The tensors are read from the layers keras-hub expects in their slots
    (`decoder._self_attention_layer._query_dense.kernel`), so adapter
    wrappers must be out of those slots while this runs.
    """
    weights = _exporter().MODEL_EXPORTERS[family](
        backbone, include_lm_head=True
    )
    return dict(weights)


def write_tokenizer(tokenizer, family, path):
    """Writes keras-hub's Hugging Face tokenizer files for `tokenizer` into
    folder `path` (what `hf_exporter.export_tokenizer` writes, for any
    subclass of a known tokenizer class).

    Returns:
        The `tokenizer_config.json` dict that was written.
    """
    exporter = _exporter()
    os.makedirs(path, exist_ok=True)
    tokenizer.save_assets(path)
    config = exporter.MODEL_TOKENIZER_CONFIGS[family](tokenizer)
    _write_json(os.path.join(path, "tokenizer_config.json"), config)
    for old, new in _RENAMES.get(family, {}).items():
        if os.path.exists(os.path.join(path, old)):
            os.replace(os.path.join(path, old), os.path.join(path, new))
    if family == "Llama3Tokenizer":
        _write_json(
            os.path.join(path, "tokenizer.json"),
            exporter.build_llama3_tokenizer_json(tokenizer),
        )
        for leftover in ("vocabulary.json", "merges.txt"):
            if os.path.exists(os.path.join(path, leftover)):
                os.remove(os.path.join(path, leftover))
    if family == "Gemma3Tokenizer":
        from keras_hub.src.utils.transformers.export.gemma3 import (
            get_gemma3_special_tokens_map,
        )

        _write_json(
            os.path.join(path, "special_tokens_map.json"),
            get_gemma3_special_tokens_map(tokenizer),
        )
    return config


def _write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
