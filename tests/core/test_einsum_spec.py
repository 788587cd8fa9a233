import keras
import numpy as np
import pytest

from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.einsum_spec import scale_along

EQUATIONS = {
    # name: (equation, input shape, output shape, bias axes)
    "mha_query": ("abc,cde->abde", (2, 3, 4), (None, 2, 5), "de"),
    "mha_output": ("abcd,cde->abe", (2, 3, 2, 5), (None, 4), "e"),
    "llama_query": ("bqm,muh->bquh", (2, 3, 4), (None, 2, 5), None),
    "gemma_query": ("btd,ndh->btnh", (2, 3, 4), (None, 2, 5), None),
    "gemma_output": ("btnh,nhd->btd", (2, 3, 2, 5), (None, 4), None),
    "gemma_ffw": ("btd,df->btf", (2, 3, 4), (None, 6), None),
}


@pytest.mark.parametrize("name", list(EQUATIONS))
def test_low_rank_branch_matches_merged_kernel(name):
    equation, in_shape, out_shape, bias_axes = EQUATIONS[name]
    layer = keras.layers.EinsumDense(equation, out_shape, bias_axes=bias_axes)
    layer.build(in_shape)
    spec = EinsumSpec.from_layer(layer)
    rng = np.random.default_rng(0)
    x = rng.normal(size=in_shape).astype("float32")
    a = rng.normal(size=spec.dims(spec.contracted) + (3,)).astype("float32")
    b = rng.normal(size=(3,) + spec.dims(spec.kernel_out)).astype("float32")
    branch = np.einsum(spec.up_equation, np.einsum(spec.down_equation, x, a), b)
    delta = np.einsum(spec.delta_equation, a, b)
    assert delta.shape == spec.kernel_shape
    merged = np.einsum(equation, x, delta)
    np.testing.assert_allclose(branch, merged, rtol=1e-4, atol=1e-4)


def test_dense_is_read_as_an_einsum():
    layer = keras.layers.Dense(6)
    layer.build((None, 4))
    spec = EinsumSpec.from_layer(layer)
    assert (spec.contracted, spec.kernel_out, spec.output_dim) == ("i", "o", 6)


def test_unsupported_layers_and_equations():
    with pytest.raises(TypeError, match="wrap `Dense` or `EinsumDense`"):
        EinsumSpec.from_layer(keras.layers.LayerNormalization())
    unbuilt = keras.layers.Dense(3)
    with pytest.raises(ValueError, match="is not built"):
        EinsumSpec.from_layer(unbuilt)
    batched = keras.layers.EinsumDense("abc,bcd->abd", (3, 5))
    batched.build((2, 3, 4))
    with pytest.raises(ValueError, match="batched"):
        EinsumSpec.from_layer(batched)


@pytest.mark.parametrize("name", list(EQUATIONS) + ["dense"])
@pytest.mark.parametrize("side", ["input", "output"])
def test_scale_along_is_the_elementwise_einsum(name, side):
    equation, in_shape, out_shape, bias_axes = EQUATIONS.get(
        name, ("...i,io->...o", (2, 3, 4), (6,), None)
    )
    if name == "dense":
        layer = keras.layers.Dense(6)
    else:
        layer = keras.layers.EinsumDense(
            equation, out_shape, bias_axes=bias_axes
        )
    layer.build(in_shape)
    spec = EinsumSpec.from_layer(layer)
    rng = np.random.default_rng(1)
    if side == "input":
        subscripts, scaled, shape = spec.input, spec.contracted, in_shape
    else:
        x = rng.normal(size=in_shape).astype("float32")
        subscripts, scaled = spec.output, spec.kernel_out
        shape = tuple(layer(x).shape)
    x = rng.normal(size=shape).astype("float32")
    scale = rng.normal(size=spec.dims(scaled)).astype("float32")
    got = keras.ops.convert_to_numpy(scale_along(x, subscripts, scale, scaled))
    want = np.einsum(f"{subscripts},{scaled}->{subscripts}", x, scale)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_scale_along_axes_in_another_order_and_bad_axes():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    s = np.arange(12, dtype="float32").reshape(4, 3)
    got = keras.ops.convert_to_numpy(scale_along(x, "abc", s, "cb"))
    np.testing.assert_allclose(got, np.einsum("abc,cb->abc", x, s))
    with pytest.raises(ValueError, match="every scaled axis"):
        scale_along(x, "abc", s, "cd")
