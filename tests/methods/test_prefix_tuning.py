"""Prefix tuning on tiny keras-hub models: the KV cache, exports, folding,
saving, training and refusals."""

import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
import tiny_models

import tf_adapters as tfa
from tf_adapters.checkpoint import CONFIG_FILE
from tf_adapters.compat.layers import walk_layers
from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.injection.lifecycle import adapter_config
from tf_adapters.injection.lifecycle import adapter_variables
from tf_adapters.methods.prefix_tuning import PrefixAttention

P = 3
MLP = tfa.PrefixTuningConfig(num_virtual_tokens=P, projection=8)
TABLE = tfa.PrefixTuningConfig(num_virtual_tokens=P, projection=None)
CAUSAL_LMS = {
    "gpt2": keras_hub.models.GPT2CausalLM,
    "llama": keras_hub.models.LlamaCausalLM,
    "mistral": keras_hub.models.MistralCausalLM,
    "qwen": keras_hub.models.QwenCausalLM,
    "gemma": keras_hub.models.GemmaCausalLM,
}
# (layers, hidden, kv heads, head dim) of the tiny backbones.
SHAPES = {"gpt2": (2, 8, 2, 4), "llama": (2, 8, 1, 4)}


def _backbone(family):
    if family == "qwen":
        keras.utils.set_random_seed(0)
        return keras_hub.models.QwenBackbone(
            vocabulary_size=tiny_models.VOCAB,
            num_layers=2,
            num_query_heads=2,
            num_key_value_heads=1,
            hidden_dim=8,
            intermediate_dim=16,
        )
    return tiny_models.backbone(family)


def _plain_lm(family):
    """A tiny causal LM without preprocessor (so without stop token)."""
    return CAUSAL_LMS[family](_backbone(family), preprocessor=None)


def _causal_lm(family, config=MLP, seed=1):
    """`_plain_lm` with a random prefix named "prefix"."""
    lm = _plain_lm(family)
    tfa.add_adapter(lm, config, name="prefix")
    tiny_models.randomize_adapter(lm, seed=seed)
    return lm


def _prompts(lengths=(5, 3), total=9):
    rng = np.random.default_rng(0)
    ids = np.zeros((len(lengths), total), "int32")
    mask = np.zeros((len(lengths), total), "int32")
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, tiny_models.VOCAB, n)
        mask[i, :n] = 1
    return ids, mask


def _greedy_without_cache(lm, prompt, total):
    """The greedy continuation from full forward passes on the growing
    sequence."""
    seq = [int(t) for t in prompt]
    while len(seq) < total:
        x = {
            "token_ids": np.array([seq], "int32"),
            "padding_mask": np.ones((1, len(seq)), "int32"),
        }
        seq.append(int(np.argmax(np.asarray(lm(x))[0, -1])))
    return seq


@pytest.mark.parametrize("family", list(CAUSAL_LMS))
def test_cached_generate_equals_greedy_without_cache(family):
    lm = _causal_lm(family)
    lm.compile(sampler="greedy")
    ids, mask = _prompts()
    x = {"token_ids": ids, "padding_mask": mask.astype(bool)}
    out = np.asarray(lm.generate(x, stop_token_ids=None)["token_ids"])
    for row, n in enumerate(mask.sum(axis=1)):
        expected = _greedy_without_cache(lm, ids[row, :n], ids.shape[1])
        assert out[row].tolist() == expected, row
    tfa.disable_adapters(lm)
    base = np.asarray(lm.generate(x, stop_token_ids=None)["token_ids"])
    assert not np.array_equal(out, base)  # the prefix is in the cached path


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_saved_model_signatures_equal_keras(family, tmp_path):
    lm = _causal_lm(family)
    ids, mask = _prompts()
    path = export_saved_model(lm, str(tmp_path), "lm", text=False)
    loaded = tf.saved_model.load(path)
    x = {"token_ids": tf.constant(ids), "padding_mask": tf.constant(mask)}
    logits = loaded.signatures["logits"](**x)["logits"].numpy()
    np.testing.assert_allclose(logits, np.asarray(lm(x)), atol=1e-5)
    new = 4
    out = loaded.signatures["generate_ids"](
        max_new_tokens=tf.constant(new), **x
    )
    for row, n in enumerate(mask.sum(axis=1)):
        expected = _greedy_without_cache(lm, ids[row, :n], n + new)
        assert out["token_ids"][row, : n + new].numpy().tolist() == expected
        assert out["padding_mask"][row].numpy().sum() == n + new


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_fold_keeps_the_logits_and_leaves_only_the_table(family, tmp_path):
    lm = _causal_lm(family)
    x = tiny_models.inputs()
    expected = np.asarray(lm(x))
    tfa.fold_prefix(lm)
    np.testing.assert_allclose(np.asarray(lm(x)), expected, atol=1e-6)
    layers, _, kv_heads, head_dim = SHAPES[family]
    assert adapter_config(lm, "prefix").projection is None
    keys = [k.split("/")[-1] for k in adapter_variables(lm.backbone, "prefix")]
    assert keys == ["prefix_key", "prefix_value"] * layers
    n = tfa.trainable_summary(lm, print_fn=None).trainable
    assert n == P * layers * 2 * kv_heads * head_dim
    tfa.fold_prefix(lm)  # a table stays as it is
    # The folded adapter saves as a table and loads onto a fresh base.
    tfa.save_adapter(lm, str(tmp_path / "folded"))
    meta = json.loads((tmp_path / "folded" / CONFIG_FILE).read_text())
    assert meta["config"]["projection"] is None
    fresh = tfa.load_adapter(_plain_lm(family), str(tmp_path / "folded"))
    np.testing.assert_allclose(np.asarray(fresh(x)), expected, atol=1e-6)


@pytest.mark.parametrize("config", [MLP, TABLE], ids=["mlp", "table"])
def test_checkpoint_and_keras_file_round_trips(config, tmp_path):
    lm = _causal_lm("llama", config)
    x = tiny_models.inputs()
    expected = np.asarray(lm(x))
    tfa.save_adapter(lm, str(tmp_path / "adapter"))
    fresh = tfa.load_adapter(_plain_lm("llama"), str(tmp_path / "adapter"))
    np.testing.assert_allclose(np.asarray(fresh(x)), expected, atol=1e-6)
    lm.save(str(tmp_path / "lm.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "lm.keras"))
    assert tfa.list_adapters(loaded) == ["prefix"]
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-6)
    assert {v.path for v in loaded.trainable_weights} == {
        v.path for v in lm.trainable_weights
    }


def test_one_fit_step_trains_only_the_prefix_and_disabling_is_exact():
    lm = _plain_lm("gpt2")
    x = tiny_models.inputs(batch=2, length=8)
    base = np.asarray(lm(x))
    tfa.add_adapter(lm, MLP, name="prefix")
    frozen = {v.path: v.numpy().copy() for v in lm.weights}
    prefix = {v.path for v in adapter_variables(lm.backbone, "prefix").values()}
    assert {v.path for v in lm.trainable_weights} == prefix
    lm.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    y = np.roll(x["token_ids"], -1, axis=1)
    lm.fit(x, y, batch_size=2, epochs=1, verbose=0)
    for var in lm.weights:
        if var.path in prefix:
            assert not np.array_equal(var.numpy(), frozen[var.path]), var.path
        else:
            assert var.numpy().tobytes() == frozen[var.path].tobytes()
    tfa.disable_adapters(lm)
    np.testing.assert_array_equal(np.asarray(lm(x)), base)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_prefix_changes_outputs_and_counts_as_computed(family):
    layers, hidden, kv_heads, head_dim = SHAPES[family]
    table = P * layers * 2 * kv_heads * head_dim
    proj = MLP.projection
    mlp = P * hidden + (hidden + 1) * proj + (proj + 1) * table // P
    for config, expected in ((TABLE, table), (MLP, mlp)):
        backbone = _backbone(family)
        x = tiny_models.inputs()
        base = np.asarray(backbone(x))
        tfa.add_adapter(backbone, config, name="prefix")
        summary = tfa.trainable_summary(backbone, print_fn=None)
        assert summary.trainable == expected, config
        assert np.abs(np.asarray(backbone(x)) - base).max() > 1e-3


def test_initialization_follows_the_seed():
    def initial(seed):
        backbone = _backbone("gpt2")
        config = tfa.PrefixTuningConfig(projection=4, seed=seed)
        tfa.add_adapter(backbone, config, name="prefix")
        return [v.numpy() for v in backbone.trainable_weights]

    first, again, other = initial(0), initial(0), initial(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    random = [(a, b) for a, b in zip(first, other, strict=True) if a.any()]
    assert len(random) == 3  # the embedding and two kernels; biases are 0
    assert not any(np.array_equal(a, b) for a, b in random)


def test_bfloat16_model_keeps_float32_prefix_weights():
    lm = keras_hub.models.GPT2CausalLM(
        tiny_models.gpt2(dtype="mixed_bfloat16"), preprocessor=None
    )
    x = tiny_models.inputs()
    base = np.asarray(lm(x))
    tfa.add_adapter(lm, MLP, name="prefix")
    assert {v.dtype for v in lm.trainable_weights} == {"float32"}
    out = np.asarray(lm(x))
    assert np.isfinite(out).all() and not np.array_equal(out, base)
    lm.compile(sampler="greedy")
    ids, mask = _prompts()
    lm.generate({"token_ids": ids, "padding_mask": mask}, stop_token_ids=None)


def test_per_example_routing_in_a_multi_adapter_export(tmp_path):
    lm = _causal_lm("gpt2")
    names = ["prefix", "lora", "table"]
    tfa.add_adapter(lm, tfa.LoraConfig(rank=2), name="lora")
    tiny_models.randomize_adapter(lm, seed=2)
    tfa.add_adapter(lm, TABLE, name="table")
    ids, mask = _prompts(lengths=(5, 3, 4, 2))
    x = {"token_ids": tf.constant(ids), "padding_mask": tf.constant(mask)}
    expected = {}
    for name in names:
        tfa.set_active_adapter(lm, name)
        expected[name] = np.asarray(lm(x))
    path = export_saved_model(
        lm, str(tmp_path), "multi", adapters=names, text=False
    )
    loaded = tf.saved_model.load(path)
    chosen = ["prefix", "lora", "table", "prefix"]
    logits = loaded.signatures["logits"](adapter=tf.constant(chosen), **x)
    for row, name in enumerate(chosen):
        np.testing.assert_allclose(
            logits["logits"][row], expected[name][row], atol=1e-5
        )
    weights = np.eye(4, 3, dtype="float32")
    weights[3] = [0.5, 0.0, 0.0]
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="adapter .*prefix.* takes a weight of 0 or 1 per example",
    ):
        loaded.signatures["logits_weighted"](
            adapter_weights=tf.constant(weights), **x
        )


def test_merging_is_refused_and_removal_restores_the_base():
    backbone = _backbone("gpt2")
    classes = [type(x) for x in walk_layers(backbone)]
    x = tiny_models.inputs()
    base = np.asarray(backbone(x))
    tfa.add_adapter(backbone, TABLE, name="table")
    alone = np.asarray(backbone(x))
    tfa.add_adapter(backbone, MLP, name="prefix")
    with pytest.raises(ValueError, match="'prefix' .*cannot be merged"):
        tfa.merge_adapter(backbone)
    with pytest.raises(ValueError, match="cannot be merged"):
        tfa.merge_and_unload(backbone)
    tfa.delete_adapter(backbone, "prefix")  # the other prefix stays
    np.testing.assert_array_equal(np.asarray(backbone(x)), alone)
    tfa.disable_adapters(backbone)
    plain = tfa.merge_and_unload(backbone)
    assert type(plain).__name__ == "GPT2Backbone"
    assert [type(x) for x in walk_layers(backbone)] == classes
    np.testing.assert_array_equal(np.asarray(plain(x)), base)


def test_fold_refusals():
    backbone = _backbone("gpt2")
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="lora")
    with pytest.raises(ValueError, match="'lora' is lora, not prefix"):
        tfa.fold_prefix(backbone)
    with pytest.raises(ValueError, match="No adapter named 'x'"):
        tfa.fold_prefix(backbone, "x")
    tfa.delete_adapter(backbone, "lora")
    with pytest.raises(ValueError, match="No adapter is active"):
        tfa.fold_prefix(backbone)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"num_virtual_tokens": 0}, ValueError, "num_virtual_tokens.*>= 1"),
        ({"num_virtual_tokens": "3"}, TypeError, "num_virtual_tokens='3'"),
        ({"projection": 0}, ValueError, "projection.*>= 1"),
        ({"projection": "none"}, TypeError, "or None.*projection='none'"),
        ({"projection": True}, TypeError, "projection=True"),
        ({"init_std": 0}, ValueError, "init_std.*> 0"),
        ({"seed": -1}, ValueError, "seed.*>= 0"),
    ],
)
def test_bad_configs_name_the_input(options, error, match):
    with pytest.raises(error, match=match):
        tfa.PrefixTuningConfig(**options)


def test_config_round_trip_and_registry():
    config = tfa.PrefixTuningConfig(num_virtual_tokens=4, projection=None)
    assert tfa.PrefixTuningConfig.from_json(config.to_json()) == config
    run = tfa.FinetuneConfig(method="prefix_tuning", num_virtual_tokens=4)
    assert run.adapter_config() == tfa.PrefixTuningConfig(
        num_virtual_tokens=4, seed=run.seed
    )


@pytest.mark.parametrize(
    "backbone, match",
    [
        (
            lambda: tiny_models.backbone("gpt_neox"),
            r"not support GPTNeoXBackbone.*Supported families: \['GPT2",
        ),
        (
            tiny_models.gemma_sliding,
            "GemmaBackbone with sliding-window attention",
        ),
    ],
    ids=["gpt_neox", "gemma2-style"],
)
def test_unsupported_models_are_refused_untouched(backbone, match):
    backbone = backbone()
    x = tiny_models.inputs()
    before = np.asarray(backbone(x))
    with pytest.raises(ValueError, match=match):
        tfa.add_adapter(backbone, MLP, name="prefix")
    assert tfa.list_adapters(backbone) == []
    np.testing.assert_array_equal(np.asarray(backbone(x)), before)


@pytest.mark.parametrize("projection_dim", [None, 6], ids=["table", "mlp"])
def test_layer_config_round_trip_and_keras_file(projection_dim, tmp_path):
    def make():
        attention = keras_hub.layers.CachedMultiHeadAttention(2, 4)
        return PrefixAttention(
            attention, "t", P, (2, 4), (2, 4), 0, 1, 8, projection_dim
        )

    layer = make()
    layer.build()
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    y = np.asarray(layer(x, x))
    revived = PrefixAttention.from_config(layer.get_config())
    revived.build()
    revived(x, x)
    revived.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(revived(x, x)), y, atol=1e-6)
    assert revived.get_config() == layer.get_config()
    inputs = keras.Input((5, 8))
    model = keras.Model(inputs, make()(inputs, inputs))
    model.save(str(tmp_path / "layer.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "layer.keras"))
    np.testing.assert_allclose(
        np.asarray(reloaded(x)), np.asarray(model(x)), atol=1e-6
    )
    model.layers[-1].adapter_enabled = False
    assert not np.allclose(np.asarray(reloaded(x)), np.asarray(model(x)))


def test_fused_attention_path_sees_the_prefix(monkeypatch):
    # keras-hub attends with `ops.dot_product_attention` (flash attention)
    # where the backend has it (JAX, PyTorch); its mask must carry the
    # prefix columns too.
    from keras_hub.src.models.llama import llama_attention

    lm = _causal_lm("llama")
    x = tiny_models.inputs()
    expected = np.asarray(lm(x))
    calls = []
    monkeypatch.setattr(
        llama_attention,
        "fused_attention_op_available",
        lambda: calls.append(1) or True,
    )
    np.testing.assert_allclose(np.asarray(lm(x)), expected, atol=1e-5)
    assert len(calls) == 2  # one per layer
