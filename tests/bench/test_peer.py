"""The PyTorch peers: same shapes as the Keras rows, greedy generation of
exactly the asked tokens, and the runs they cannot join."""

import numpy as np
import pytest

from bench import generate
from bench import peer
from bench import train
from bench.shapes import build_backbone


def test_every_shape_has_a_peer_config_of_the_same_size():
    # The two real shapes are compared in every `python -m bench` run
    # (building them here would take most of a minute).
    model = peer.build_model("tiny")
    assert peer.param_count(model) == build_backbone("tiny").count_params()
    assert peer.hf_config("smollm2_135m").num_key_value_heads == 3
    assert peer.hf_config("gpt2_small").n_embd == 768
    with pytest.raises(ValueError, match="'bert'"):
        peer.hf_config("bert")


def test_peers_join_float32_runs_only():
    methods = ["full", "lora", "peft_lora"]
    assert train.peers_that_fit(methods, "float32") == (methods, [])
    kept, notes = train.peers_that_fit(methods, "mixed_bfloat16")
    assert kept == ["full", "lora"]
    assert notes == [
        "peft_lora left out: float32 only (this run: mixed_bfloat16)"
    ]


def test_transformers_generates_exactly_the_new_tokens():
    call_for, _ = peer.generator("tiny")
    out = call_for(np.arange(1, 5, dtype="int32")[None], 6)()
    assert tuple(out.shape) == (1, 10)


def test_generation_run_has_the_transformers_row():
    result = generate.run(
        "tiny",
        variants=("base", "lora_merged", "transformers"),
        batch_sizes=(1,),
        prompt_length=4,
        new_tokens=4,
        jit_compile=False,
        rounds=1,
    )
    rows = result["batches"][0]["variants"]
    assert list(rows) == ["base", "lora_merged", "transformers"]
    assert result["params"]["transformers"] == result["params"]["base"]
    assert {"vs_base", "vs_transformers"} <= set(rows["lora_merged"])
    assert "vs_transformers" in rows["base"]
    assert "vs_base" not in rows["transformers"]
