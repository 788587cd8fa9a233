import os

import keras
import keras_hub
import numpy as np

import tf_adapters as tfa


def _classifier():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=64,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    return tfa.LabelWordClassifier(backbone, label_token_ids=[5, 9])


def test_label_bias_shifts_the_logits_and_survives_a_keras_round_trip(
    tmp_path,
):
    model = _classifier()
    x = {
        "token_ids": np.array([[1, 2, 3, 4]], "int32"),
        "padding_mask": np.ones((1, 4), "int32"),
    }
    before = np.asarray(model(x))
    assert not model.label_bias.trainable
    assert all(w is not model.label_bias for w in model.trainable_weights)
    model.label_bias.assign([0.5, -0.5])
    np.testing.assert_allclose(model(x), before + [0.5, -0.5], atol=1e-6)
    path = os.path.join(tmp_path, "clf.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.label_bias, [0.5, -0.5])
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
