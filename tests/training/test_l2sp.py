import keras
import numpy as np
import pytest

from tf_adapters.training.l2sp import apply_l2sp
from tf_adapters.training.l2sp import l2sp_penalty
from tf_adapters.training.l2sp import remove_l2sp


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model


def test_penalty_is_exactly_half_lambda_times_squared_distance():
    model = _model()
    apply_l2sp(model, 0.3)
    kernel, bias = model.layers[0].kernel, model.layers[0].bias
    kernel.assign(kernel + np.array([[1, 0], [0, 2], [0, 0]], "float32"))
    bias.assign(bias + np.array([0, -1], "float32"))
    # 0.3 / 2 · (1 + 4 + 1) = 0.9
    assert float(l2sp_penalty(model)) == pytest.approx(0.9, 1e-6)
    # Keras adds it to the loss: `model.losses` holds one term per weight.
    assert float(sum(model.losses)) == pytest.approx(0.9, 1e-6)
    remove_l2sp(model)
    assert model.losses == []


def _distance_after_training(strength):
    model = _model()
    start = [np.array(v) for v in model.trainable_weights]
    if strength:
        apply_l2sp(model, strength)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([[2, -1], [1, 3], [-2, 1]], "float32")) + 1.0
    model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    return sum(
        float(np.sum((np.array(v) - s) ** 2))
        for v, s in zip(model.trainable_weights, start, strict=True)
    )


def test_larger_lambda_keeps_weights_closer_to_the_start():
    distances = [_distance_after_training(s) for s in (0.0, 0.5, 5.0)]
    assert distances[0] > distances[1] > distances[2] > 0, distances


def test_bad_strength():
    with pytest.raises(ValueError, match="must be > 0"):
        apply_l2sp(_model(), 0.0)
    with pytest.raises(TypeError, match="must be a number"):
        apply_l2sp(_model(), "1")
    frozen = _model()
    frozen.trainable = False
    with pytest.raises(ValueError, match="no trainable weights"):
        apply_l2sp(frozen, 1.0)
