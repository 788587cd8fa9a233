"""The Hugging Face name tables of every family, and PEFT-format round
trips (no torch needed) where keras-hub has no Hugging Face converter."""

import json

import keras_hub
import numpy as np
import pytest

import tf_adapters as tfa
from tf_adapters.injection.lifecycle import adapter_variables
from tf_adapters.models.hf_names import hf_modules

SMALL = dict(vocabulary_size=32, num_layers=2, hidden_dim=8)
BACKBONES = {
    "opt": lambda: keras_hub.models.OPTBackbone(
        num_heads=2, intermediate_dim=16, max_sequence_length=16, **SMALL
    ),
    "gpt_neox": lambda: keras_hub.models.GPTNeoXBackbone(
        vocabulary_size=32,
        num_layers=2,
        hidden_dim=16,  # a rotary dimension of 16 / 2 heads x 0.25 = 2
        num_heads=2,
        intermediate_dim=16,
        max_sequence_length=16,
    ),
    "phi3": lambda: keras_hub.models.Phi3Backbone(
        num_query_heads=2, num_key_value_heads=1, intermediate_dim=16, **SMALL
    ),
    "qwen3": lambda: keras_hub.models.Qwen3Backbone(
        num_query_heads=2,
        num_key_value_heads=1,
        head_dim=4,
        intermediate_dim=16,
        **SMALL,
    ),
    "mistral": lambda: keras_hub.models.MistralBackbone(
        num_query_heads=2, num_key_value_heads=1, intermediate_dim=16, **SMALL
    ),
    "llama3": lambda: keras_hub.models.Llama3Backbone(
        num_query_heads=2, num_key_value_heads=1, intermediate_dim=16, **SMALL
    ),
    "gemma": lambda: keras_hub.models.GemmaBackbone(
        num_query_heads=2,
        num_key_value_heads=1,
        head_dim=4,
        intermediate_dim=32,
        **SMALL,
    ),
    "gpt2": lambda: keras_hub.models.GPT2Backbone(
        num_heads=2, intermediate_dim=16, max_sequence_length=16, **SMALL
    ),
}
IDS = np.array([[1, 5, 9, 3, 7, 2]])
FEEDFORWARD_OUTPUT = {"gemma": "ffw_linear"}


def _outputs(backbone):
    inputs = {"token_ids": IDS, "padding_mask": np.ones_like(IDS)}
    return np.asarray(backbone(inputs))


def test_phi3_fused_modules_are_row_slices():
    modules = hf_modules(BACKBONES["phi3"]())
    qkv = [
        m for m in modules if m.hf_name == "model.layers.0.self_attn.qkv_proj"
    ]
    # query: 2 heads x 4; key and value: 1 KV head x 4, in HF's order.
    assert [(m.path.split("/")[-1], m.rows) for m in qkv] == [
        ("query", (0, 8)),
        ("key", (8, 12)),
        ("value", (12, 16)),
    ]
    gate_up = [m for m in modules if m.hf_name.endswith("0.mlp.gate_up_proj")]
    assert [m.rows for m in gate_up] == [(0, 16), (16, 32)]
    assert gate_up[0].path.endswith("feedforward_gate_dense")


def test_every_projection_of_each_decoder_block_has_a_name():
    for name, make in BACKBONES.items():
        backbone = make()
        paths = {m.path for m in hf_modules(backbone)}
        layers = {
            v.path.removesuffix("/kernel")
            for v in backbone.weights
            if v.path.endswith("/kernel")
            and "_layer_" in v.path
            or v.path.endswith("/kernel")
            and "decoder_block" in v.path
        }
        assert layers == paths, name


@pytest.mark.parametrize("family", sorted(BACKBONES))
@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_peft_format_round_trip(family, method, tmp_path):
    backbone = BACKBONES[family]()
    fresh = BACKBONES[family]()
    fresh.set_weights(backbone.get_weights())
    config = (
        tfa.LoraConfig(rank=2, target_layers=[".*"], exclude=["tok.*"])
        if method == "lora"
        else tfa.IA3Config(
            target_layers=[".*"],
            exclude=["tok.*"],
            feedforward_layers=[
                FEEDFORWARD_OUTPUT.get(family, "feedforward_output_dense")
            ],
        )
    )
    tfa.add_adapter(backbone, config, "default")
    rng = np.random.default_rng(0)
    for var in adapter_variables(backbone, "default").values():
        var.assign(rng.normal(1.0 if method == "ia3" else 0.0, 0.3, var.shape))
    expected = _outputs(backbone)
    tfa.save_adapter(backbone, str(tmp_path / "peft"), format="peft")
    meta = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert meta["peft_type"] == method.upper()
    tfa.load_adapter(fresh, str(tmp_path / "peft"))
    assert np.abs(_outputs(fresh) - expected).max() < 1e-5


def test_bottleneck_and_trainable_layers_are_refused_for_peft(tmp_path):
    backbone = BACKBONES["gpt2"]()
    tfa.add_adapter(backbone, tfa.BottleneckConfig(), "b")
    with pytest.raises(ValueError, match="PEFT has no BottleneckConfig"):
        tfa.save_adapter(backbone, str(tmp_path / "b"), format="peft")
    tfa.add_adapter(
        backbone, tfa.LoraConfig(rank=2, trainable_layers=["layer_norm"]), "l"
    )
    with pytest.raises(ValueError, match="modules_to_save"):
        tfa.save_adapter(backbone, str(tmp_path / "l"), "l", format="peft")
    with pytest.raises(ValueError, match="`format` must be one of"):
        tfa.save_adapter(backbone, str(tmp_path / "x"), "l", format="hf")
    assert not (tmp_path / "b").exists() and not (tmp_path / "l").exists()
