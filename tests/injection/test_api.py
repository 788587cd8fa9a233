import keras
import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.injection.lifecycle import adapter_layers

FAMILIES = list(tiny_models.BACKBONES)
IDENTITY_METHODS = ["lora", "dora", "pissa", "houlsby", "pfeiffer"]
IDENTITY_METHODS += ["parallel", "ia3"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", IDENTITY_METHODS)
def test_fresh_adapter_is_identity(family, method):
    backbone = tiny_models.backbone(family)
    x = tiny_models.inputs()
    before = np.asarray(backbone(x))
    tfa.add_adapter(backbone, tiny_models.all_configs()[method], name="t")
    assert adapter_layers(backbone, "t")
    np.testing.assert_array_equal(np.asarray(backbone(x)), before)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", [*IDENTITY_METHODS, "prompt"])
def test_adapter_changes_output_and_disable_restores_base(family, method):
    backbone = tiny_models.backbone(family)
    x = tiny_models.inputs()
    before = np.asarray(backbone(x))
    tfa.add_adapter(backbone, tiny_models.all_configs()[method], name="t")
    tiny_models.randomize_adapter(backbone)
    adapted = np.asarray(backbone(x))
    assert adapted.shape == before.shape
    assert np.abs(adapted - before).max() > 1e-4
    tfa.disable_adapters(backbone)
    np.testing.assert_array_equal(np.asarray(backbone(x)), before)
    tfa.enable_adapters(backbone)
    np.testing.assert_allclose(np.asarray(backbone(x)), adapted, atol=1e-6)


def test_only_adapter_weights_are_trainable():
    backbone = tiny_models.backbone()
    total = len(backbone.weights)
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    trainable = backbone.trainable_weights
    # rank-2 LoRA on query and value of 2 layers: 2 matrices per projection.
    assert len(trainable) == 2 * 2 * 2
    assert all("lora" in v.name for v in trainable)
    assert len(backbone.weights) == total + 8


def test_trainable_layers_are_unfrozen_and_named():
    backbone = tiny_models.backbone()
    cfg = tfa.LoraConfig(rank=2, trainable_layers=["layer_norm"])
    tfa.add_adapter(backbone, cfg)
    names = {v.path for v in backbone.trainable_weights}
    assert any("layer_norm" in n and "transformer" not in n for n in names)


def test_trainable_summary_counts():
    backbone = tiny_models.backbone()
    total = sum(int(np.prod(v.shape)) for v in backbone.weights)
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2, target_layers=["query"]))
    summary = tfa.trainable_summary(backbone, print_fn=None)
    # query kernel is (8, 2, 4): A is (8, 2), B is (2, 2, 4) -> 32 per layer.
    assert summary.trainable == 2 * 32
    assert summary.total == total + 64
    assert abs(summary.percent - 100 * 64 / (total + 64)) < 1e-9
    assert "trainable%" in str(summary)


def test_target_paths_regex_suffix_and_exclude():
    backbone = tiny_models.backbone()
    cfg = tfa.LoraConfig(
        rank=2,
        target_layers=[r"transformer_layer_\d+/self_attention/(query|key)"],
        exclude=["transformer_layer_1/self_attention/key"],
    )
    tfa.add_adapter(backbone, cfg)
    wrapped = sorted(
        f"{layer.base_layer.name}" for layer in adapter_layers(backbone)
    )
    assert wrapped == ["key", "query", "query"]


@pytest.mark.parametrize("method", [*IDENTITY_METHODS, "prompt"])
def test_fit_trains_adapter_and_leaves_base_bit_identical(method):
    model = tiny_models.gpt2_causal_lm()
    tfa.add_adapter(model, tiny_models.all_configs()[method], name="t")
    base = {id(v): v.numpy() for v in model.weights if not v.trainable}
    adapter = {id(v): v.numpy() for v in model.trainable_weights}
    assert adapter and len(base) + len(adapter) == len(model.weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(tiny_models.TRAIN_TEXT, batch_size=4, epochs=1, verbose=0)
    for v in model.weights:
        if id(v) in base:
            np.testing.assert_array_equal(v.numpy(), base[id(v)], v.path)
        else:
            assert not np.array_equal(v.numpy(), adapter[id(v)]), v.path


def test_multiple_adapters_switch_and_delete():
    backbone = tiny_models.backbone()
    x = tiny_models.inputs()
    base = np.asarray(backbone(x))
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    tiny_models.randomize_adapter(backbone, seed=1)
    out_a = np.asarray(backbone(x))
    tfa.add_adapter(backbone, tfa.IA3Config(), name="b")
    tiny_models.randomize_adapter(backbone, seed=2)
    out_b = np.asarray(backbone(x))
    assert tfa.active_adapter(backbone) == "b"
    assert all("ia3" in v.name for v in backbone.trainable_weights)
    tfa.set_active_adapter(backbone, "a")
    np.testing.assert_allclose(np.asarray(backbone(x)), out_a, atol=1e-6)
    assert all("lora" in v.name for v in backbone.trainable_weights)
    tfa.set_active_adapter(backbone, "b")
    np.testing.assert_allclose(np.asarray(backbone(x)), out_b, atol=1e-6)
    tfa.delete_adapter(backbone, "b")
    assert tfa.list_adapters(backbone) == ["a"]
    assert tfa.active_adapter(backbone) == "a"
    np.testing.assert_allclose(np.asarray(backbone(x)), out_a, atol=1e-6)
    tfa.delete_adapter(backbone, "a")
    assert not adapter_layers(backbone)
    np.testing.assert_array_equal(np.asarray(backbone(x)), base)


def test_two_adapters_on_the_same_layer_nest():
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=3), name="b")
    query = backbone.transformer_layers[0]._self_attention_layer._query_dense
    assert query.adapter_name == "b" and query.base_layer.adapter_name == "a"
    tfa.delete_adapter(backbone, "a")
    query = backbone.transformer_layers[0]._self_attention_layer._query_dense
    assert query.adapter_name == "b"
    assert isinstance(query.base_layer, keras.layers.EinsumDense)


def _snapshot(backbone):
    return (
        type(backbone),
        [id(v) for v in backbone.weights],
        [v.trainable for v in backbone.weights],
    )


@pytest.mark.parametrize(
    "config, match",
    [
        (tfa.LoraConfig(target_layers=["querry"]), r"'querry' matches no"),
        (
            tfa.LoraConfig(target_layers=["query"], exclude=["query"]),
            "excluded",
        ),
        (
            tfa.BottleneckConfig(bottleneck_size=64),
            r"bottleneck_size.*\(64\).*hidden size .*\(8\)",
        ),
        (
            tfa.IA3Config(target_layers=["token_embedding"]),
            "matches no Dense/EinsumDense",
        ),
    ],
)
def test_bad_targets_raise_and_leave_model_unchanged(config, match):
    backbone = tiny_models.backbone()
    x = tiny_models.inputs()
    before, snapshot = np.asarray(backbone(x)), _snapshot(backbone)
    with pytest.raises(ValueError, match=match):
        tfa.add_adapter(backbone, config, name="t")
    assert _snapshot(backbone) == snapshot
    np.testing.assert_array_equal(np.asarray(backbone(x)), before)


def test_unmatched_target_error_lists_available_paths():
    backbone = tiny_models.backbone()
    with pytest.raises(ValueError) as info:
        tfa.add_adapter(backbone, tfa.LoraConfig(target_layers=["nope"]))
    assert "transformer_layer_<i>/self_attention/query" in str(info.value)
    assert "feedforward_output_dense" in str(info.value)


def test_api_input_errors():
    backbone = tiny_models.backbone()
    with pytest.raises(TypeError, match="`model` must be a keras-hub"):
        tfa.add_adapter(keras.layers.Dense(2), tfa.LoraConfig())
    with pytest.raises(TypeError, match="`config` must be"):
        tfa.add_adapter(backbone, {"rank": 8})
    with pytest.raises(ValueError, match="`name` must be"):
        tfa.add_adapter(backbone, tfa.LoraConfig(), name="a b")
    with pytest.raises(ValueError, match="has no adapters"):
        tfa.set_active_adapter(backbone, "x")
    tfa.add_adapter(backbone, tfa.LoraConfig(), name="a")
    with pytest.raises(ValueError, match="already exists"):
        tfa.add_adapter(backbone, tfa.LoraConfig(), name="a")
    with pytest.raises(ValueError, match=r"No adapter named 'x'.*\['a'\]"):
        tfa.set_active_adapter(backbone, "x")
    with pytest.raises(ValueError, match="No adapter named 'x'"):
        tfa.delete_adapter(backbone, "x")
    with pytest.raises(ValueError, match="already has a prompt-tuning"):
        tfa.add_adapter(backbone, tfa.PromptTuningConfig(), name="p1")
        tfa.add_adapter(backbone, tfa.PromptTuningConfig(), name="p2")


def test_unknown_family_needs_explicit_targets():
    class MyBackbone(type(tiny_models.backbone())):
        pass

    backbone = MyBackbone(
        vocabulary_size=64,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
    )
    # A subclass inherits its parent's defaults through the MRO.
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))

    import keras_hub

    other = keras_hub.models.BertBackbone(
        vocabulary_size=64,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
    )
    with pytest.raises(ValueError, match="no default adapter targets"):
        tfa.add_adapter(other, tfa.LoraConfig(rank=2))
    tfa.add_adapter(other, tfa.LoraConfig(rank=2, target_layers=["query"]))
    assert len(adapter_layers(other)) == 1
    assert all(isinstance(x, AdapterLayer) for x in adapter_layers(other))


def test_parallel_adapter_scopes_decoder_calls_and_leaves_no_trace():
    from tf_adapters.core.forward_scope import ForwardScopeMixin

    backbone = tiny_models.backbone("gpt2")
    before = [type(layer) for layer in backbone.transformer_layers]
    config = tiny_models.all_configs()["parallel"]
    tfa.add_adapter(backbone, config, name="p")
    blocks = backbone.transformer_layers
    assert all(isinstance(layer, ForwardScopeMixin) for layer in blocks)
    # Same class names: `.keras` files key layer weights by them.
    assert [type(x).__name__ for x in blocks] == [c.__name__ for c in before]
    tfa.add_adapter(backbone, config, name="q")
    tfa.delete_adapter(backbone, "p")
    assert all(isinstance(layer, ForwardScopeMixin) for layer in blocks)
    tfa.delete_adapter(backbone, "q")
    assert [type(layer) for layer in blocks] == before


EXACT_STARTS = ["lora", "houlsby", "pfeiffer", "parallel", "adalora"]


@pytest.mark.parametrize("method", EXACT_STARTS)
def test_an_exact_start_leaves_compiled_outputs_bit_for_bit(method):
    # What `finetune` relies on to evaluate the frozen base through the
    # freshly adapted model: the XLA-compiled outputs are the base's, bit
    # for bit.
    import tensorflow as tf

    configs = {
        **tiny_models.all_configs(),
        "adalora": tfa.AdaLoraConfig(init_rank=4, target_rank=2),
    }
    config = configs[method]
    assert config.starts_as_base()
    backbone = tiny_models.backbone("gpt2")
    x = tiny_models.inputs()
    before = np.asarray(tf.function(backbone, jit_compile=True)(x))
    tfa.add_adapter(backbone, config, name="t")
    after = np.asarray(tf.function(backbone, jit_compile=True)(x))
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("method", ["prompt", "prefix", "dora", "pissa", "ia3"])
def test_other_starts_do_not_claim_exactness(method):
    # Virtual tokens change the outputs; DoRA and PiSSA / OLoRA equal the
    # base only up to rounding, and so does IA3 under XLA (scaling a
    # projection's input by ones changes how XLA fuses the product: last
    # bits differ).
    assert not tiny_models.all_configs()[method].starts_as_base()
