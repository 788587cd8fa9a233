"""keras-hub's `run_layer_test` pattern, for adapter layers."""

import keras
import numpy as np


def run_adapter_layer_test(make_layer, input_shape, identity=True, tmp=None):
    """Checks an adapter layer made by `make_layer(dtype)`.

    - a fresh layer returns its base layer's output (when `identity`);
    - `get_config` / `from_config` round trip;
    - one `fit` step changes every adapter weight and no base weight;
    - `.keras` save and reload give equal outputs;
    - under `mixed_bfloat16` it computes in bfloat16 with float32 weights.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=input_shape).astype("float32")

    layer = make_layer("float32")
    y = np.asarray(layer(x))
    if identity:
        expected = layer.base_layer(x)
        if layer.hoisted_activation is not None:
            # The wrapper applies the projection's own activation itself.
            expected = layer.hoisted_activation(expected)
        np.testing.assert_array_equal(y, np.asarray(expected))

    config = layer.get_config()
    revived = type(layer).from_config(config)
    assert np.asarray(revived(x)).shape == y.shape
    assert revived.get_config() == config

    inputs = keras.Input(input_shape[1:])
    model = keras.Model(inputs, layer(inputs))
    layer.base_layer.trainable = False
    base = [v.numpy() for v in layer.base_layer.weights]
    adapter = {k: v.numpy() for k, v in layer.adapter_variables().items()}
    assert adapter, "an adapter layer must have adapter variables"
    for var in layer.adapter_variables().values():
        # Off the identity point, so every weight receives a gradient.
        var.assign(var.numpy() + rng.normal(0, 0.1, var.shape))
    adapter = {k: v.numpy() for k, v in layer.adapter_variables().items()}
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = rng.normal(size=y.shape).astype("float32")
    model.fit(x, target, epochs=1, batch_size=len(x), verbose=0)
    for before, var in zip(base, layer.base_layer.weights, strict=True):
        np.testing.assert_array_equal(var.numpy(), before)
    for key, var in layer.adapter_variables().items():
        assert not np.array_equal(var.numpy(), adapter[key]), key

    if tmp is not None:
        path = str(tmp / "layer.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        np.testing.assert_allclose(
            np.asarray(reloaded(x)), np.asarray(model(x)), atol=1e-6
        )

    mixed = make_layer("mixed_bfloat16")
    out = mixed(x)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert all(v.dtype == "float32" for v in mixed.adapter_variables().values())
