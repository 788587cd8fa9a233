import os

import numpy as np
import pytest
import tensorflow as tf
import tiny_models

import tf_adapters as tfa
from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.export.saved_model import next_version
from tf_adapters.tasks.label_word_classifier import LabelWordClassifier


def _classifier(method=None):
    backbone = tiny_models.backbone("gpt2")
    if method:
        tfa.add_adapter(backbone, tiny_models.all_configs()[method], "t")
        tiny_models.randomize_adapter(backbone)
    return LabelWordClassifier(backbone, [3, 7])


@pytest.mark.parametrize("method", [None, "lora", "houlsby"])
def test_export_reloads_with_equal_outputs_and_stores_weights_once(
    tmp_path, method
):
    classifier = _classifier(method)
    x = tiny_models.inputs()
    expected = tf.nn.softmax(classifier(x)).numpy()
    path = export_saved_model(classifier, str(tmp_path), "m", merge=False)
    assert path == os.path.join(str(tmp_path), "m", "1")
    loaded = tf.saved_model.load(path)
    for name in ("classify", "serving_default"):
        out = loaded.signatures[name](
            token_ids=tf.constant(x["token_ids"]),
            padding_mask=tf.constant(x["padding_mask"]),
        )["probabilities"].numpy()
        np.testing.assert_allclose(out, expected, atol=1e-6)


def test_export_traces_the_model_once(tmp_path, monkeypatch):
    # Each trace of the embedded model costs seconds. One is needed:
    # `classify` itself, traced inside a save context so that
    # `tf.saved_model.save` reuses it (was a second trace).
    # `serving_default` is the same traced function (was a third), and
    # Keras's default save signatures of the classifier and its backbone
    # are not traced (were two more).
    classifier = _classifier("lora")
    classifier(tiny_models.inputs())
    traces = []
    call = type(classifier.backbone).call

    def counting_call(self, *args, **kwargs):
        traces.append(tf.executing_eagerly())
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(classifier.backbone), "call", counting_call)
    path = export_saved_model(classifier, str(tmp_path), "m")
    assert len(traces) == 1, traces
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"classify", "serving_default"}


def test_export_stores_each_weight_once(tmp_path):

    backbone = tiny_models.gpt2(
        vocabulary_size=2000, num_layers=1, hidden_dim=64, intermediate_dim=128
    )
    classifier = LabelWordClassifier(backbone, [3, 7])
    path = export_saved_model(classifier, str(tmp_path), "m", merge=False)
    n_bytes = 4 * sum(int(np.prod(v.shape)) for v in classifier.weights)
    data = os.path.join(path, "variables", "variables.data-00000-of-00001")
    # Keras writes each weight twice without our fix (keras#23553).
    assert n_bytes <= os.path.getsize(data) < 1.05 * n_bytes


def test_versions_increase_and_are_never_overwritten(tmp_path):
    classifier = _classifier()
    assert next_version(str(tmp_path / "m")) == 1
    export_saved_model(classifier, str(tmp_path), "m", merge=False)
    export_saved_model(classifier, str(tmp_path), "m", merge=False)
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2"]
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(classifier, str(tmp_path), "m", version=2)
    with pytest.raises(ValueError, match="positive int"):
        export_saved_model(classifier, str(tmp_path), "m", version=0)
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2"]
