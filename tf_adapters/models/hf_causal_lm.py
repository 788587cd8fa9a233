"""keras-hub causal LMs from Hugging Face folders that keras-hub cannot
convert itself (OPT, GPT-NeoX, Phi-3): the backbone from
`tf_adapters.models.hf_convert`, the tokenizer from the folder's files."""

import logging
import os

import keras_hub

from tf_adapters.core.integrity import corrupt
from tf_adapters.core.integrity import load_json
from tf_adapters.models.hf_convert import convert_hf_backbone
from tf_adapters.models.hf_fixes import hf_config

log = logging.getLogger(__name__)

# model_type → (causal LM, preprocessor, tokenizer) classes of keras-hub.
CLASSES = {
    "opt": ("OPTCausalLM", "OPTCausalLMPreprocessor", "OPTTokenizer"),
    "gpt_neox": (
        "GPTNeoXCausalLM",
        "GPTNeoXCausalLMPreprocessor",
        "GPTNeoXTokenizer",
    ),
    "phi3": ("Phi3CausalLM", "Phi3CausalLMPreprocessor", "Phi3Tokenizer"),
}


def hf_causal_lm(folder, dtype=None):
    """The keras-hub causal LM of Hugging Face folder `folder` (OPT,
    GPT-NeoX or Phi-3).

    The tokenizer is read from `vocab.json` + `merges.txt` or
    `tokenizer.json` (OPT, GPT-NeoX: byte-level BPE) or `tokenizer.model`
    (Phi-3: SentencePiece); a folder without one gives a model without a
    preprocessor (it takes token ids).

    Args:
        folder: str. The checkpoint folder.
        dtype: str. Dtype policy. Defaults to `None` (float32).

    Returns:
        `keras_hub.models.CausalLM`.
    """
    model_type = hf_config(folder)["model_type"]
    lm_name, preprocessor_name, tokenizer_name = CLASSES[model_type]
    backbone = convert_hf_backbone(folder, dtype=dtype)
    tokenizer = _tokenizer(folder, getattr(keras_hub.models, tokenizer_name))
    preprocessor = None
    if tokenizer is None:
        log.warning(
            "%s has no tokenizer files; the model takes token ids.", folder
        )
    else:
        preprocessor = getattr(keras_hub.models, preprocessor_name)(tokenizer)
    return getattr(keras_hub.models, lm_name)(
        backbone, preprocessor=preprocessor
    )


def _tokenizer(folder, cls):
    folder = str(folder)
    proto = os.path.join(folder, "tokenizer.model")
    if cls is keras_hub.models.Phi3Tokenizer:
        return cls(proto=proto) if os.path.isfile(proto) else None
    vocab = os.path.join(folder, "vocab.json")
    merges = os.path.join(folder, "merges.txt")
    if os.path.isfile(vocab) and os.path.isfile(merges):
        return _build(cls, folder, vocabulary=vocab, merges=merges)
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        return None
    what, advice = "Hugging Face tokenizer", "Download or copy it again"
    model = load_json(path, what, advice).get("model")
    kind = model.get("type") if isinstance(model, dict) else None
    if kind != "BPE":
        raise ValueError(
            f"{path} holds a {kind!r} tokenizer; {cls.__name__} is "
            "byte-level BPE."
        )
    vocab, merges = model.get("vocab"), model.get("merges")
    if not (
        isinstance(vocab, dict)
        and all(isinstance(i, int) for i in vocab.values())
        and isinstance(merges, list)
        and all(_is_merge(m) for m in merges)
    ):
        raise corrupt(
            path, what, "lacks a BPE `vocab` and `merges` table", advice
        )
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return _build(cls, folder, vocabulary=vocab, merges=merges)


def _is_merge(merge):
    """A merge as `"a b"` or `["a", "b"]`."""
    if isinstance(merge, list):
        return len(merge) == 2 and all(isinstance(m, str) for m in merge)
    return isinstance(merge, str)


def _build(cls, folder, **kwargs):
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(
            f"The tokenizer files of {folder} do not fit keras-hub's "
            f"{cls.__name__}: {e}"
        ) from None
