import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.core.adapter_layer import AdapterLayer

FAMILIES = list(tiny_models.BACKBONES)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["lora", "dora", "pissa", "ia3"])
def test_merge_unmerge_and_unload_keep_outputs(family, method):
    backbone = tiny_models.backbone(family)
    x = tiny_models.inputs()
    base = np.asarray(backbone(x))
    tfa.add_adapter(backbone, tiny_models.all_configs()[method], name="t")
    tiny_models.randomize_adapter(backbone)
    adapted = np.asarray(backbone(x))
    assert np.abs(adapted - base).max() > 1e-3

    tfa.merge_adapter(backbone)
    np.testing.assert_allclose(np.asarray(backbone(x)), adapted, atol=1e-5)
    tfa.unmerge_adapter(backbone)
    np.testing.assert_allclose(np.asarray(backbone(x)), adapted, atol=1e-5)

    plain = tfa.merge_and_unload(backbone)
    fresh = tiny_models.backbone(family)
    assert type(plain) is type(fresh)
    assert not any(isinstance(x, AdapterLayer) for x in plain._flatten_layers())
    # Same layers and weights as a base model: it runs at base cost.
    assert [type(x) for x in plain._flatten_layers()] == [
        type(x) for x in fresh._flatten_layers()
    ]
    assert [v.shape for v in plain.weights] == [v.shape for v in fresh.weights]
    assert all(v.trainable for v in plain.weights)
    np.testing.assert_allclose(np.asarray(plain(x)), adapted, atol=1e-5)


ALL_PROJECTIONS = [
    "query",
    "key",
    "value",
    "attention_output",
    "feedforward_intermediate_dense",
    "feedforward_output_dense",
]


@pytest.mark.parametrize(
    "config",
    [
        tfa.LoraConfig(rank=2, target_layers=ALL_PROJECTIONS),
        tfa.IA3Config(target_layers=ALL_PROJECTIONS),
    ],
    ids=["lora", "ia3"],
)
def test_merge_is_exact_on_projections_with_fused_activation(config):
    # GPT-2's feed-forward input projection is Dense(activation="gelu"): the
    # update must act before the activation for the merge to be exact.
    backbone = tiny_models.backbone("gpt2")
    x = tiny_models.inputs()
    base = np.asarray(backbone(x))
    tfa.add_adapter(backbone, config, name="t")
    tiny_models.randomize_adapter(backbone)
    adapted = np.asarray(backbone(x))
    plain = tfa.merge_and_unload(backbone)
    np.testing.assert_allclose(np.asarray(plain(x)), adapted, atol=1e-5)
    dense = plain.transformer_layers[0]._feedforward_intermediate_dense
    assert dense.activation.__name__ != "linear"
    del base


def test_delete_gives_the_activation_back():
    backbone = tiny_models.backbone("gpt2")
    x = tiny_models.inputs()
    base = np.asarray(backbone(x))
    targets = ["feedforward_intermediate_dense"]
    tfa.add_adapter(backbone, tfa.LoraConfig(target_layers=targets), "a")
    tfa.add_adapter(backbone, tfa.IA3Config(target_layers=targets), "b")
    tiny_models.randomize_adapter(backbone)
    tfa.set_active_adapter(backbone, "a")
    tiny_models.randomize_adapter(backbone)
    tfa.delete_adapter(backbone, "b")
    tfa.delete_adapter(backbone, "a")
    np.testing.assert_array_equal(np.asarray(backbone(x)), base)


@pytest.mark.parametrize("method", ["houlsby", "prompt"])
def test_unmergeable_methods_refuse_to_merge(method):
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tiny_models.all_configs()[method], name="t")
    with pytest.raises(ValueError, match="cannot be merged"):
        tfa.merge_adapter(backbone)
    with pytest.raises(ValueError, match="cannot be merged"):
        tfa.merge_and_unload(backbone)


def test_merged_adapter_blocks_switching():
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tfa.LoraConfig(), name="a")
    tfa.add_adapter(backbone, tfa.IA3Config(), name="b")
    tfa.merge_adapter(backbone)
    with pytest.raises(ValueError, match="'b' is merged.*unmerge_adapter"):
        tfa.set_active_adapter(backbone, "a")
    with pytest.raises(ValueError, match="'b' is merged"):
        tfa.disable_adapters(backbone)
    tfa.unmerge_adapter(backbone)
    tfa.set_active_adapter(backbone, "a")


def _quantized_adapted(method, mode):
    model = tiny_models.gpt2_causal_lm()
    tfa.add_adapter(model, tiny_models.all_configs()[method], name="t")
    tiny_models.randomize_adapter(model)
    model.backbone.quantize(mode)
    x = tiny_models.inputs(batch=2, length=6)
    x["token_ids"] %= 20  # within the tiny tokenizer's vocabulary
    return model, x, np.asarray(model(x))


@pytest.mark.parametrize("method", ["lora", "ia3"])
@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_base_refuses_to_merge(method, mode):
    # Merging into integer kernels rounds a small update away: before this
    # check, LoRA merged into an int8 base gave the base's outputs exactly,
    # and int4 failed with an AttributeError.
    model, x, adapted = _quantized_adapted(method, mode)
    tfa.disable_adapters(model)
    base = np.asarray(model(x))
    tfa.enable_adapters(model)
    assert np.abs(adapted - base).max() > 1e-3
    with pytest.raises(ValueError, match=f"quantized .*{mode}.*merge=False"):
        tfa.merge_adapter(model)
    with pytest.raises(ValueError, match="quantized"):
        tfa.merge_and_unload(model)
    np.testing.assert_array_equal(np.asarray(model(x)), adapted)


def test_export_on_a_quantized_base_keeps_the_adapter(tmp_path):
    # Export merges by default; on a quantized base it keeps the adapter as
    # a separate branch instead, so the SavedModel still applies it.
    import tensorflow as tf

    from tf_adapters.export.saved_model import export_saved_model

    model, x, adapted = _quantized_adapted("lora", "int8")
    path = export_saved_model(model, str(tmp_path), "q", text=False)
    served = tf.saved_model.load(path).signatures["logits"](
        **{k: tf.constant(v) for k, v in x.items()}
    )["logits"]
    np.testing.assert_allclose(np.asarray(served), adapted, atol=1e-4)
