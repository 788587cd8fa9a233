"""`load_base` on Hugging Face folders keras-hub cannot convert (OPT,
GPT-NeoX, Phi-3): the causal LM, its tokenizer, equal logits."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import hf_tiny  # noqa: E402

import tf_adapters as tfa  # noqa: E402

VOCAB = {"a": 3, "t": 4, "Ġ": 5, "Ġa": 6, "Ġt": 7, "at": 8}
MERGES = ["Ġ a", "Ġ t", "a t"]


def _saved(family, folder):
    model = hf_tiny.hf_model(family)
    model.save_pretrained(folder)
    return model


def test_opt_folder_with_vocab_and_merges(tmp_path):
    hf = _saved("opt", tmp_path)
    vocab = {"<pad>": 0, "</s>": 2, **VOCAB}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES))
    model = tfa.load_base(str(tmp_path), sequence_length=8)
    assert type(model).__name__ == "OPTCausalLM"
    assert np.asarray(model.preprocessor.tokenizer(" a t")).tolist() == [6, 7]
    ours = hf_tiny.keras_logits(model.backbone)
    assert np.abs(ours - hf_tiny.hf_logits(hf)).max() < 1e-5
    assert isinstance(model.generate(" a", max_length=6), str)


def test_gpt_neox_folder_with_tokenizer_json(tmp_path):
    _saved("gpt_neox", tmp_path)
    vocab = {"<|endoftext|>": 0, **VOCAB}
    merges = [m.split(" ") for m in MERGES]  # the newer list-of-pairs form
    tokenizer = {"model": {"type": "BPE", "vocab": vocab, "merges": merges}}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer))
    model = tfa.load_base(str(tmp_path))
    assert type(model).__name__ == "GPTNeoXCausalLM"
    assert np.asarray(model.preprocessor.tokenizer(" a t")).tolist() == [6, 7]


def test_a_folder_without_tokenizer_files_takes_token_ids(tmp_path, caplog):
    hf = _saved("phi3", tmp_path)
    model = tfa.load_base(str(tmp_path))
    assert type(model).__name__ == "Phi3CausalLM"
    assert model.preprocessor is None
    assert "no tokenizer files" in caplog.text
    ids = hf_tiny.IDS
    logits = model({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    assert np.abs(np.asarray(logits) - hf_tiny.hf_logits(hf)).max() < 1e-5


def test_a_wordpiece_tokenizer_json_is_refused(tmp_path):
    _saved("gpt_neox", tmp_path)
    (tmp_path / "tokenizer.json").write_text(
        json.dumps({"model": {"type": "WordPiece", "vocab": {}}})
    )
    with pytest.raises(ValueError, match="'WordPiece' tokenizer"):
        tfa.load_base(str(tmp_path))
