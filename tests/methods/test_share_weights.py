import keras
import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa

SHARED = {
    "lora": tfa.LoraConfig(rank=2, share_weights=True),
    "houlsby": tfa.BottleneckConfig(
        variant="houlsby", bottleneck_size=2, share_weights=True
    ),
    "pfeiffer": tfa.BottleneckConfig(
        variant="pfeiffer", bottleneck_size=2, share_weights=True
    ),
    "parallel": tfa.BottleneckConfig(
        variant="parallel", bottleneck_size=2, share_weights=True
    ),
}


def _backbone(layers=3):
    keras.utils.set_random_seed(0)
    return tiny_models.gpt2(num_layers=layers)


def _params(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.parametrize("method", sorted(SHARED))
def test_sharing_divides_parameters_by_the_number_of_layers(method):
    config = SHARED[method]
    unshared = type(config).from_dict(
        {**config.to_dict(), "share_weights": False}
    )
    shared_model, plain_model = _backbone(), _backbone()
    tfa.add_adapter(shared_model, config, name="s")
    tfa.add_adapter(plain_model, unshared, name="s")
    assert _params(plain_model) == 3 * _params(shared_model)
    from tf_adapters.injection.lifecycle import adapter_variables

    keys = adapter_variables(shared_model, "s")
    assert all(k.startswith("transformer_layer_0/") for k in keys)


@pytest.mark.parametrize("method", sorted(SHARED))
def test_shared_adapter_round_trips(method, tmp_path):
    model = _backbone()
    tfa.add_adapter(model, SHARED[method], name="s")
    tiny_models.randomize_adapter(model)
    x = tiny_models.inputs()
    expected = np.asarray(model(x))
    # One update reaches every layer: the output moves in all layers.
    tfa.save_adapter(model, str(tmp_path / "adapter"))
    fresh = _backbone()
    tfa.load_adapter(fresh, str(tmp_path / "adapter"))
    np.testing.assert_allclose(fresh(x), expected, atol=1e-6)
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(loaded(x), expected, atol=1e-6)
    assert _params(loaded) == _params(model)


def test_shared_lora_merges_into_every_layer():
    model = _backbone()
    tfa.add_adapter(model, SHARED["lora"], name="s")
    tiny_models.randomize_adapter(model)
    x = tiny_models.inputs()
    expected = np.asarray(model(x))
    tfa.merge_adapter(model)
    np.testing.assert_allclose(model(x), expected, atol=1e-5)


def test_share_weights_must_be_a_bool():
    with pytest.raises(TypeError, match="`share_weights` must be true"):
        tfa.LoraConfig(share_weights="yes")
