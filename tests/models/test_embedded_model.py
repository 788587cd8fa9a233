import os

import keras_hub
import numpy as np
import pytest
import tiny_models
from numpy_llama import NumpyLlama

from tf_adapters.models.loading import STAMP_FILE
from tf_adapters.models.loading import gguf_preset
from tf_adapters.models.loading import load_base
from tf_adapters.models.loading import resolve_preset

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, a small robot",
]


def test_embedded_default_is_the_converted_smollm2(embedded):
    backbone = embedded.backbone
    assert type(backbone).__name__ == "GGUFLlamaBackbone"
    assert backbone.num_layers == 30 and backbone.hidden_dim == 576
    assert backbone.vocabulary_size == 49152
    n = sum(int(np.prod(v.shape)) for v in backbone.weights)
    assert 134_000_000 < n < 135_000_000, n


def test_logits_match_an_independent_numpy_forward_pass(embedded, gguf_path):
    reference = NumpyLlama(gguf_path)
    tokenizer = embedded.preprocessor.tokenizer
    for prompt in PROMPTS:
        ids = np.asarray(tokenizer(prompt)).astype("int32")
        expected = reference.logits(ids)
        x = {"token_ids": ids[None], "padding_mask": np.ones_like(ids)[None]}
        hidden = embedded.backbone(x)
        logits = np.asarray(
            embedded.backbone.token_embedding(hidden, reverse=True)
        )[0]
        np.testing.assert_allclose(logits, expected, atol=1e-3, rtol=0)


def test_greedy_generation_says_paris(embedded):
    embedded.compile(sampler="greedy")
    out = embedded.generate(["The capital of France is"], max_length=8)
    assert out[0].startswith("The capital of France is Paris"), out


@pytest.mark.parametrize(
    "text",
    [
        "Hello world! Two  spaces, tabs\tand new\nlines.",
        "Ünïcödé, emoji 🙂 and 中文.",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>",
    ],
)
def test_tokenizer_round_trips_text(embedded, text):
    tokenizer = embedded.preprocessor.tokenizer
    assert tokenizer.detokenize(tokenizer(text)) == text


def test_cached_preset_is_reused_not_reconverted(
    embedded, gguf_path, model_cache
):
    preset = gguf_preset(gguf_path, model_cache)
    stamp = os.path.join(preset, STAMP_FILE)
    mtime = os.path.getmtime(os.path.join(preset, "model.weights.h5"))
    assert gguf_preset(gguf_path, model_cache) == preset
    assert os.path.getmtime(os.path.join(preset, "model.weights.h5")) == mtime
    # A stale stamp (another converter version) triggers a fresh conversion.
    with open(stamp, "w") as f:
        f.write('{"source_sha256": "x", "converter_version": 0}')
    assert gguf_preset(gguf_path, model_cache) == preset
    with open(stamp) as f:
        assert '"converter_version": 2' in f.read()


def test_local_keras_hub_preset_round_trip(embedded, tmp_path):
    backbone = tiny_models.gpt2(num_layers=1)
    backbone.save_to_preset(str(tmp_path / "gpt2"))
    assert resolve_preset(str(tmp_path / "gpt2")) == str(tmp_path / "gpt2")
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "gpt2"))
    assert type(loaded).__name__ == "GPT2Backbone"


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("missing/model.gguf", FileNotFoundError, "GGUF file .* not found"),
        ("./no/such/dir", FileNotFoundError, "looks like a path"),
        (42, TypeError, "`model` must be 'embedded'"),
    ],
)
def test_bad_model_specs(spec, error, match):
    with pytest.raises(error, match=match):
        load_base(spec)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="without config.json"):
        load_base(str(tmp_path))


def test_a_gguf_path_resolves_to_the_same_cached_preset(
    embedded, gguf_path, model_cache
):
    assert resolve_preset(gguf_path, model_cache) == resolve_preset(
        "embedded", model_cache
    )


def test_in_graph_tokenization_matches_eager_for_chat_prompts(embedded):
    import tensorflow as tf

    tokenizer = embedded.preprocessor.tokenizer
    text = (
        "<|im_start|>user\nIs it good? Answer in one word.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    eager = [list(map(int, row)) for row in tokenizer(tf.constant([text]))]
    graph = tf.function(tokenizer)(tf.constant([text])).to_list()
    assert graph == eager
    assert 2 in eager[0]  # <|im_end|> stays one token
