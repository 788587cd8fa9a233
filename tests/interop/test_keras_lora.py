"""keras-hub `.lora.h5` files (`enable_lora` + `save_lora_weights`) load as
tf_adapters LoRA adapters with equal outputs."""

import keras_hub
import numpy as np
import pytest

import tf_adapters as tfa

IDS = np.array([[1, 5, 9, 3, 7, 2]])


def _gpt2(hidden=8):
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=32,
        num_layers=2,
        num_heads=2,
        hidden_dim=hidden,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def _llama(hidden=8):
    return keras_hub.models.Llama3Backbone(
        vocabulary_size=32,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=hidden,
        intermediate_dim=16,
    )


def _outputs(backbone):
    inputs = {"token_ids": IDS, "padding_mask": np.ones_like(IDS)}
    return np.asarray(backbone(inputs))


def _keras_lora_file(make, tmp_path, targets=None):
    """A backbone with keras-hub LoRA (random non-zero factors) saved to a
    `.lora.h5` file; returns (file, its outputs, a fresh equal base)."""
    original = make()
    fresh = make()
    fresh.set_weights(original.get_weights())
    original.enable_lora(2, target_layer_names=targets)
    rng = np.random.default_rng(0)
    for var in original.weights:
        if "lora_kernel" in var.path:
            var.assign(rng.normal(0, 0.5, var.shape))
    path = str(tmp_path / "adapter.lora.h5")
    original.save_lora_weights(path)
    return path, _outputs(original), fresh


@pytest.mark.parametrize("make", [_gpt2, _llama], ids=["gpt2", "llama3"])
@pytest.mark.parametrize(
    "targets",
    [None, ["query", "value", "attention_output", "feedforward_output_dense"]],
    ids=["default", "per-head-and-dense"],
)
def test_lora_h5_loads_with_equal_outputs(tmp_path, make, targets):
    path, expected, fresh = _keras_lora_file(make, tmp_path, targets)
    base = _outputs(fresh)
    assert np.abs(expected - base).max() > 1e-3  # the adapter matters
    tfa.load_adapter(fresh, path)
    assert tfa.list_adapters(fresh) == ["default"]
    assert np.abs(_outputs(fresh) - expected).max() < 1e-5
    # The loaded adapter merges like any other.
    tfa.merge_and_unload(fresh)
    assert np.abs(_outputs(fresh) - expected).max() < 1e-5


def test_lora_h5_of_another_model_is_refused(tmp_path):
    path, _, _ = _keras_lora_file(_gpt2, tmp_path)
    other = _gpt2(hidden=12)
    before = [w.numpy().copy() for w in other.weights]
    with pytest.raises(ValueError, match="needs .* the file was saved from"):
        tfa.load_adapter(other, path)
    assert tfa.list_adapters(other) == []
    assert all(
        np.array_equal(a, b.numpy())
        for a, b in zip(before, other.weights, strict=True)
    )


def test_truncated_lora_h5_is_refused(tmp_path):
    path, _, fresh = _keras_lora_file(_gpt2, tmp_path)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 3])
    with pytest.raises(ValueError, match="not a readable keras-hub LoRA"):
        tfa.load_adapter(fresh, path)
