"""keras-hub's Hugging Face conversions, repaired: Mistral's weights come
out of keras-hub's converter through float16, and Llama's ignore
`rms_norm_eps`; `fix_hf_conversion` (what `load_base` runs) restores them."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import hf_tiny  # noqa: E402
import keras_hub  # noqa: E402

from tf_adapters.models.hf_fixes import fix_hf_conversion  # noqa: E402


def test_mistral_weights_are_float32_again(tmp_path):
    folder = hf_tiny.save_hf("mistral", tmp_path / "m")
    reference = hf_tiny.hf_logits(hf_tiny.hf_model("mistral"))
    backbone = keras_hub.models.Backbone.from_preset(folder)
    lossy = np.abs(hf_tiny.keras_logits(backbone) - reference).max()
    fix_hf_conversion(backbone, folder)
    fixed = np.abs(hf_tiny.keras_logits(backbone) - reference).max()
    assert lossy > 1e-5 and fixed < 1e-6, (lossy, fixed)


def test_llama_norm_epsilon_is_the_checkpoint_s(tmp_path):
    model = hf_tiny.hf_model("llama")
    model.config.rms_norm_eps = 1e-2  # large enough to change the logits
    for layer in model.model.layers:
        layer.input_layernorm.variance_epsilon = 1e-2
        layer.post_attention_layernorm.variance_epsilon = 1e-2
    model.model.norm.variance_epsilon = 1e-2
    model.save_pretrained(tmp_path / "l")
    reference = hf_tiny.hf_logits(model)
    backbone = keras_hub.models.Backbone.from_preset(str(tmp_path / "l"))
    unfixed = np.abs(hf_tiny.keras_logits(backbone) - reference).max()
    fix_hf_conversion(backbone, str(tmp_path / "l"))
    fixed = np.abs(hf_tiny.keras_logits(backbone) - reference).max()
    assert unfixed > 1e-4 and fixed < 1e-5, (unfixed, fixed)


def test_a_keras_hub_preset_is_left_alone(tmp_path):
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=16,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )
    backbone.save_to_preset(str(tmp_path / "p"))
    before = [w.numpy() for w in backbone.weights]
    fix_hf_conversion(backbone, str(tmp_path / "p"))
    assert all(
        np.array_equal(a, b.numpy())
        for a, b in zip(before, backbone.weights, strict=True)
    )
