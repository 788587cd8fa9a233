import keras
import numpy as np
import tensorflow as tf
import tiny_models

import tf_adapters as tfa
from tf_adapters.tasks.last_token_classifier import LastTokenClassifier


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


def _plain_keras_build(monkeypatch):
    """Gives the task models Keras's own build step back."""
    from tf_adapters.compat.trainer import SingleTraceBuildMixin

    monkeypatch.delattr(SingleTraceBuildMixin, "_maybe_symbolic_build")


def test_first_steps_are_traced_once(count_traces):
    # Adam's slots and the metrics' variables are made before the first
    # trace; otherwise tf.function traces the step that makes them twice.
    model, x, y = _classifier()
    train, test = count_traces("train_step"), count_traces("test_step")
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
    model, x, y = _classifier()
    ours = _fit_generator(model, x, y)
    _plain_keras_build(monkeypatch)
    model, x, y = _classifier()
    assert ours == _fit_generator(model, x, y) > 0


def test_empty_data_behaves_as_in_keras(monkeypatch):
    def outcome(model, x):
        empty = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, "int32")))
        try:
            history = model.fit(empty.take(0).batch(4), verbose=0)
        except Exception as e:  # what Keras says, if it says anything
            return type(e).__name__, str(e)
        return history.history, int(model.optimizer.iterations.numpy())

    model, x, _ = _classifier()
    ours = outcome(model, x)
    _plain_keras_build(monkeypatch)
    model, x, _ = _classifier()
    assert ours == outcome(model, x)
