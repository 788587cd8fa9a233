import os

import keras
import numpy as np
import tiny_models

import tf_adapters as tfa


def _classifier():
    backbone = tiny_models.backbone("gpt2")
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
