import keras
import numpy as np
import tensorflow as tf
import tiny_models
from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

import tf_adapters as tfa
from tf_adapters.training.last_token_classifier import LastTokenClassifier


def _classifier():
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    model = LastTokenClassifier(backbone, num_classes=2)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )
    x = tiny_models.inputs(batch=8, length=6)
    y = np.arange(8, dtype="int32") % 2
    return model, x, y


def _count(monkeypatch, name):
    traces = []
    step = getattr(TensorFlowTrainer, name)

    def counted(self, data):
        traces.append(1)  # Python runs only while tf.function traces
        return step(self, data)

    monkeypatch.setattr(TensorFlowTrainer, name, counted)
    return traces


def test_first_steps_are_traced_once(monkeypatch):
    # Adam's slots and the metrics' variables are made before the first
    # trace; otherwise tf.function traces the step that makes them twice.
    model, x, y = _classifier()
    train, test = (
        _count(monkeypatch, "train_step"),
        _count(monkeypatch, "test_step"),
    )
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    history = model.fit(data, epochs=2, verbose=0)
    assert len(train) == 1
    assert len(history.history["accuracy"]) == 2
    model.evaluate(data, verbose=0)
    assert len(test) == 1
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # arrays
    assert len(train) == 1  # the same train function, not traced again


def _fit_generator(model, x, y):
    seen = []

    def batches():
        for i in range(2):
            seen.append(i)
            rows = slice(4 * i, 4 * i + 4)
            yield {k: v[rows] for k, v in x.items()}, y[rows]

    model.fit(batches(), epochs=1, verbose=0)
    assert seen == [0, 1]
    return int(model.optimizer.iterations.numpy())


def test_generators_train_as_in_keras(monkeypatch):
    # A generator cannot be rewound, so no batch is taken out to build: it
    # trains on exactly the steps plain Keras trains on.
    from tf_adapters.training.backbone_model import BackboneModel
    from tf_adapters.training.multi_worker import MultiWorkerFitMixin

    model, x, y = _classifier()
    ours = _fit_generator(model, x, y)
    monkeypatch.setattr(
        BackboneModel,
        "_maybe_symbolic_build",
        MultiWorkerFitMixin._maybe_symbolic_build,
    )
    model, x, y = _classifier()
    assert ours == _fit_generator(model, x, y) > 0


def test_empty_data_behaves_as_in_keras(monkeypatch):
    from tf_adapters.training.backbone_model import BackboneModel
    from tf_adapters.training.multi_worker import MultiWorkerFitMixin

    def outcome(model, x):
        empty = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, "int32")))
        try:
            history = model.fit(empty.take(0).batch(4), verbose=0)
        except Exception as e:  # what Keras says, if it says anything
            return type(e).__name__, str(e)
        return history.history, int(model.optimizer.iterations.numpy())

    model, x, _ = _classifier()
    ours = outcome(model, x)
    monkeypatch.setattr(
        BackboneModel,
        "_maybe_symbolic_build",
        MultiWorkerFitMixin._maybe_symbolic_build,
    )
    model, x, _ = _classifier()
    assert ours == outcome(model, x)
