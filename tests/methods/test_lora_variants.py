"""LoRA variants on one layer: DoRA's forward and gradients against PEFT's,
PiSSA / OLoRA's starting pair against PEFT's, `all-linear` targets, and the
combinations that are refused."""

import keras
import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.injection.lifecycle import adapter_layers
from tf_adapters.methods.lora import LoraLayer


def _dense_pair(seed=0, use_dora=False, init="default"):
    """A built `LoraLayer` over `Dense(6)` on 8 inputs, trained-looking."""
    keras.utils.set_random_seed(seed)
    layer = LoraLayer(
        keras.layers.Dense(6),
        "t",
        rank=3,
        alpha=6.0,
        use_dora=use_dora,
        init=init,
    )
    layer.build((None, 8))
    rng = np.random.default_rng(seed)
    layer.projection.bias.assign(rng.normal(0, 0.5, 6).astype("float32"))
    for var in (layer.lora_a, layer.lora_b):
        var.assign(var.numpy() + rng.normal(0, 0.3, var.shape))
    if use_dora:
        layer.lora_magnitude.assign(
            layer.lora_magnitude.numpy() * rng.uniform(0.5, 1.5, 6)
        )
    return layer


def test_dora_forward_and_gradients_equal_peft():
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    import tensorflow as tf

    ours = _dense_pair(use_dora=True)
    x = np.random.default_rng(1).normal(size=(4, 8)).astype("float32")
    weights = np.random.default_rng(2).normal(size=(4, 6)).astype("float32")

    base = torch.nn.Sequential(torch.nn.Linear(8, 6))
    with torch.no_grad():
        base[0].weight.copy_(torch.tensor(ours.projection.kernel.numpy().T))
        base[0].bias.copy_(torch.tensor(ours.projection.bias.numpy()))
    config = peft.LoraConfig(
        r=3, lora_alpha=6, target_modules=["0"], use_dora=True
    )
    model = peft.get_peft_model(base, config)
    module = model.base_model.model[0]
    with torch.no_grad():
        module.lora_A["default"].weight.copy_(
            torch.tensor(ours.lora_a.numpy().T)
        )
        module.lora_B["default"].weight.copy_(
            torch.tensor(ours.lora_b.numpy().T)
        )
        module.lora_magnitude_vector["default"].weight.copy_(
            torch.tensor(ours.lora_magnitude.numpy())
        )
    theirs = model(torch.tensor(x))
    (theirs * torch.tensor(weights)).sum().backward()

    with tf.GradientTape() as tape:
        y = ours(x)
        loss = tf.reduce_sum(y * weights)
    variables = [ours.lora_a, ours.lora_b, ours.lora_magnitude]
    grads = tape.gradient(loss, variables)
    np.testing.assert_allclose(y, theirs.detach().numpy(), atol=1e-5)
    expected = [
        module.lora_A["default"].weight.grad.numpy().T,
        module.lora_B["default"].weight.grad.numpy().T,
        module.lora_magnitude_vector["default"].weight.grad.numpy(),
    ]
    for ours_grad, their_grad in zip(grads, expected, strict=True):
        np.testing.assert_allclose(ours_grad, their_grad, atol=1e-5)
    # The norm is detached: B's gradient is not the full derivative.
    with tf.GradientTape() as tape:
        kernel = ours.projection.kernel + ours.delta()
        norm = tf.norm(kernel, axis=0)
        full = tf.reduce_sum(
            ((x @ kernel) * ours.lora_magnitude / norm + ours.projection.bias)
            * weights
        )
    assert np.abs(tape.gradient(full, ours.lora_b) - grads[1]).max() > 1e-4


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_starting_pair_equals_peft_and_is_the_identity(init):
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")

    layer = _dense_pair(init=init)
    kernel = layer.projection.kernel.numpy()
    base = torch.nn.Sequential(torch.nn.Linear(8, 6))
    with torch.no_grad():
        base[0].weight.copy_(torch.tensor(kernel.T))
    config = peft.LoraConfig(
        r=3, lora_alpha=6, target_modules=["0"], init_lora_weights=init
    )
    module = peft.get_peft_model(base, config).base_model.model[0]
    residual = module.base_layer.weight.detach().numpy().T  # (in, out)
    start = layer.lora_a_init.numpy() @ layer.lora_b_init.numpy()
    np.testing.assert_allclose(
        kernel - layer.scale * start, residual, atol=1e-5
    )
    # A fresh layer: A = A0, B = B0, so the update is exactly zero.
    fresh = LoraLayer(keras.layers.Dense(6), "t", rank=3, alpha=6, init=init)
    x = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    np.testing.assert_array_equal(fresh(x), fresh.base_layer(x))


def test_all_linear_is_every_projection_of_the_decoder_blocks():
    for family in tiny_models.BACKBONES:
        backbone = tiny_models.backbone(family)
        config = tfa.LoraConfig(rank=2, target_layers="all-linear")
        tfa.add_adapter(backbone, config)
        paths = {layer.projection.path for layer in adapter_layers(backbone)}
        blocks = {block.path for block in backbone.transformer_layers}
        projections = {
            layer.path
            for layer in backbone._flatten_layers()
            if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))
        }
        inside = {p for p in projections if p.rsplit("/", 1)[0] in blocks}
        inside |= {p for p in projections if any(b in p for b in blocks)}
        assert paths == inside, family
        assert len(paths) >= 4 * backbone.num_layers, family


def test_quantized_bases_are_refused_or_explained():
    model = tiny_models.gpt2_causal_lm()
    model.backbone.quantize("int8")
    before = [w.numpy().copy() for w in model.weights]
    for config, message in [
        (tfa.LoraConfig(use_dora=True), "DoRA.*quantized.*merge it"),
        (tfa.LoraConfig(init="pissa"), "init='pissa'.*quantized.*afterwards"),
    ]:
        with pytest.raises(ValueError, match=message):
            tfa.add_adapter(model, config)
    assert tfa.list_adapters(model) == []
    after = [w.numpy() for w in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))

    # DoRA added first, the base quantized afterwards: the call says why.
    model = tiny_models.gpt2_causal_lm()
    tfa.add_adapter(model, tiny_models.all_configs()["dora"])
    model.backbone.quantize("int8")
    x = tiny_models.inputs(batch=1, length=4)
    x["token_ids"] %= 20
    with pytest.raises(ValueError, match="DoRA.*quantized"):
        model(x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(init="pissa", share_weights=True), "share weights"),
        (dict(init="loftq"), "`init` must be one of"),
        (dict(use_dora="yes"), "use_dora"),
    ],
)
def test_bad_variant_options_are_refused(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        tfa.LoraConfig(**kwargs)


def test_pissa_rank_above_the_kernel_rank_is_refused():
    backbone = tiny_models.backbone()
    with pytest.raises(ValueError, match="rank <= min"):
        tfa.add_adapter(backbone, tfa.LoraConfig(rank=64, init="pissa"))
    assert tfa.list_adapters(backbone) == []


def test_gaussian_init_draws_a_with_std_one_over_rank():
    layer = LoraLayer(
        keras.layers.Dense(256), "t", rank=4, alpha=8, init="gaussian"
    )
    layer.build((None, 512))
    assert abs(np.std(layer.lora_a.numpy()) - 0.25) < 0.01
    assert not np.any(layer.lora_b.numpy())


def test_dora_on_an_embedding_is_refused_naming_the_layer():
    backbone = tiny_models.backbone()
    config = tfa.LoraConfig(use_dora=True, target_layers=["token_embedding"])
    with pytest.raises(ValueError, match="'token_embedding' matches no Dense"):
        tfa.add_adapter(backbone, config)
    assert tfa.list_adapters(backbone) == []


@pytest.mark.parametrize("use_dora", [False, True])
def test_lora_under_mixed_bfloat16_matches_float32(use_dora):
    # A mixed policy autocasts the factors to bfloat16 inside `call`:
    # DoRA's norm and magnitude ratio stay float32, and the branch's
    # einsums (rank 3: odd) avoid oneDNN's wrong bfloat16 einsum with an
    # ellipsis (`einsum_spec.einsum`).
    x = np.random.default_rng(1).normal(size=(4, 8)).astype("float32")
    reference = _dense_pair(use_dora=use_dora)
    expected = reference(x).numpy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = _dense_pair(use_dora=use_dora)
    finally:
        keras.config.set_dtype_policy("float32")
    layer.set_weights(reference.get_weights())
    assert layer.compute_dtype == "bfloat16"
    out = layer(x)
    assert out.dtype == "bfloat16"
    np.testing.assert_allclose(np.float32(out), expected, rtol=0.05, atol=0.05)
