import json

import pytest

import tf_adapters as tfa
from tf_adapters.methods.registry import config_from_dict

CONFIGS = [
    tfa.LoraConfig(rank=4, alpha=8, dropout=0.1, target_layers=["query"]),
    tfa.BottleneckConfig(variant="parallel", bottleneck_size=16),
    tfa.IA3Config(target_layers=["key"], feedforward_layers=[]),
    tfa.PromptTuningConfig(num_virtual_tokens=5, init="random", seed=3),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.method)
def test_json_round_trip(config):
    text = config.to_json()
    assert json.loads(text)["method"] == config.method
    assert type(config).from_json(text) == config
    assert config_from_dict(json.loads(text)) == config


def test_lora_alpha_defaults_to_twice_the_rank():
    assert tfa.LoraConfig(rank=4).alpha == 8.0
    assert tfa.LoraConfig(rank=4).scale == 2.0
    assert tfa.LoraConfig(rank=4, alpha=16).scale == 4.0


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: tfa.LoraConfig(rank=0), ValueError, r"`rank` must be >= 1"),
        (lambda: tfa.LoraConfig(rank=-3), ValueError, r"rank=-3"),
        (lambda: tfa.LoraConfig(rank=2.5), TypeError, r"`rank` must be an int"),
        (
            lambda: tfa.LoraConfig(rank=True),
            TypeError,
            r"`rank` must be an int",
        ),
        (lambda: tfa.LoraConfig(alpha=0), ValueError, r"`alpha` must be > 0"),
        (lambda: tfa.LoraConfig(alpha="big"), TypeError, r"`alpha` must be"),
        (
            lambda: tfa.LoraConfig(alpha=float("nan")),
            ValueError,
            "must be finite",
        ),
        (lambda: tfa.LoraConfig(dropout=1.5), ValueError, r"`dropout` must be"),
        (
            lambda: tfa.LoraConfig(target_layers="query["),
            ValueError,
            "invalid regular expression 'query\\['",
        ),
        (
            lambda: tfa.LoraConfig(target_layers=[1]),
            TypeError,
            "`target_layers` must be a list of non-empty strings",
        ),
        (
            lambda: tfa.BottleneckConfig(variant="serial"),
            ValueError,
            r"`variant` must be one of \['houlsby', 'parallel', 'pfeiffer'\]",
        ),
        (
            lambda: tfa.BottleneckConfig(bottleneck_size=0),
            ValueError,
            "`bottleneck_size` must be >= 1",
        ),
        (
            lambda: tfa.BottleneckConfig(activation="nope"),
            ValueError,
            "`activation` must be one of",
        ),
        (
            lambda: tfa.BottleneckConfig(layer_norm="yes"),
            TypeError,
            "`layer_norm` must be a bool",
        ),
        (
            lambda: tfa.BottleneckConfig(parallel_input_layer="x"),
            ValueError,
            "only used by variant='parallel'",
        ),
        (
            lambda: tfa.PromptTuningConfig(num_virtual_tokens=0),
            ValueError,
            "`num_virtual_tokens` must be >= 1",
        ),
        (
            lambda: tfa.PromptTuningConfig(init="text"),
            ValueError,
            "`init` must be one of",
        ),
        (
            lambda: tfa.IA3Config(trainable_layers=[""]),
            TypeError,
            "`trainable_layers` must be",
        ),
        (
            lambda: tfa.LoraConfig.from_dict({"rank": 2, "ranks": 3}),
            ValueError,
            r"LoraConfig: unknown option\(s\) \['ranks'\]. Valid options:",
        ),
        (
            lambda: tfa.LoraConfig.from_dict({"method": "ia3"}),
            ValueError,
            "This is a 'ia3' config, not 'lora'",
        ),
        (
            lambda: config_from_dict({"method": "dora"}),
            ValueError,
            "Unknown adapter method 'dora'",
        ),
    ],
)
def test_bad_values_raise_naming_the_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bottleneck_size_from_reduction_factor():
    cfg = tfa.BottleneckConfig(reduction_factor=4)
    assert cfg.size_for(768) == 192
    with pytest.raises(ValueError, match=r"must not exceed the hidden size"):
        tfa.BottleneckConfig(bottleneck_size=10).size_for(8)
