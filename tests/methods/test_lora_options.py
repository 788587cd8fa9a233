"""LoRA's PEFT-compatible options (rsLoRA, rank and alpha patterns) and
IA3's feed-forward check."""

import keras_hub
import numpy as np
import pytest

import tf_adapters as tfa
from tf_adapters.injection.lifecycle import adapter_layers


def _gpt2():
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=32,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def test_rank_and_alpha_patterns_and_rslora_set_each_layer():
    config = tfa.LoraConfig(
        rank=4,
        alpha=8,
        use_rslora=True,
        rank_pattern={"transformer_layer_1/.*query": 2},
        alpha_pattern={"value": 3},
    )
    backbone = tfa.add_adapter(_gpt2(), config, "t")
    found = {
        (layer.projection.name, layer.rank, layer.alpha, round(layer.scale, 4))
        for layer in adapter_layers(backbone)
    }
    assert found == {
        ("query", 4, 8.0, round(8 / np.sqrt(4), 4)),
        ("query", 2, 8.0, round(8 / np.sqrt(2), 4)),
        ("value", 4, 3.0, 1.5),
    }
    shapes = sorted(
        tuple(v.shape) for v in backbone.trainable_weights if "lora_a" in v.path
    )
    assert shapes == [(8, 2), (8, 4), (8, 4), (8, 4)]
    assert tfa.LoraConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rank_pattern={"query": 0}), r"rank_pattern\['query'\]"),
        (dict(rank_pattern=["query"]), "must be a dict"),
        (dict(alpha_pattern={"(": 2.0}), "invalid regular expression"),
        (dict(use_rslora="yes"), "use_rslora"),
    ],
)
def test_bad_lora_options_are_refused(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        tfa.LoraConfig(**kwargs)


def test_ia3_feedforward_layers_must_be_targets():
    config = tfa.IA3Config(
        target_layers=["key", "value"], feedforward_layers=["ffw_linear"]
    )
    backbone = _gpt2()
    with pytest.raises(ValueError, match="'ffw_linear' matches none"):
        tfa.add_adapter(backbone, config, "t")
    assert tfa.list_adapters(backbone) == []
