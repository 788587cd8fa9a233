"""The benchmark suite's arithmetic and one tiny run (the numbers
themselves are machine-dependent and belong to `python -m bench`)."""

import os

import numpy as np
import pytest

from bench import train
from bench.report import markdown
from bench.shapes import build_backbone
from bench.shapes import id_range
from bench.shapes import matmul_params
from bench.targets import targets
from bench.timing import interleaved
from bench.timing import paired_ratio
from bench.timing import summary
from bench.timing import switch_cost
from tests.bench.fake_report import bench_report


def test_interleaved_runs_rounds_in_turn():
    calls = []
    times = interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=2,
        steps=2,
    )
    assert calls == ["a", "a", "b", "b", "a", "a", "b", "b"]
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}


def test_paired_ratio_is_per_round_and_robust_to_drift():
    # The machine gets 3x slower in round 2: both sides slow down, and the
    # per-round ratio stays 2.
    times = {"a": [1, 1, 3, 3, 1, 1], "b": [2, 2, 6, 6, 2, 2]}
    r = paired_ratio(times, "a", "b", steps=2)
    assert (r["ratio"], r["min"], r["max"]) == (2.0, 2.0, 2.0)
    # The ratio of medians is what the tokens/s columns divide to.
    assert r["of_medians"] == np.median(times["b"]) / np.median(times["a"])
    s = summary([1.0, 2.0, 3.0, 4.0])
    assert (s["median_s"], s["min_s"], s["max_s"], s["n"]) == (2.5, 1, 4, 4)
    assert s["iqr_s"] == pytest.approx(1.5)


def test_switch_cost_compares_first_steps_of_rounds_with_later_ones():
    times = {"a": [3, 1, 3, 1], "b": [1, 1, 1, 1]}
    assert switch_cost(times, steps=2) == {"a": 3.0, "b": 1.0}
    assert switch_cost(times, steps=1) == {}


def test_matmul_params_counts_what_a_token_multiplies_with():
    backbone = build_backbone("tiny")
    # 2 layers × (4·32² attention + 2·32·64 feed-forward) + 512·32 tied
    # embedding; position embeddings, biases and norms do not count.
    assert matmul_params(backbone) == 2 * (4 * 32 * 32 + 2 * 32 * 64) + 512 * 32


def test_random_ids_fit_every_vocabulary_they_are_drawn_for():
    # GPT-2 small (50257) and the SmolLM2 shape (49152) read the same ids.
    assert id_range("gpt2_small") == id_range("smollm2_135m") == 49152
    assert id_range("tiny") == 512
    with pytest.raises(ValueError, match="`shape` must be one of"):
        id_range("huge")


def test_tiny_training_run_with_the_peft_peer_and_report():
    result = train.run(
        "tiny",
        methods=("full", "lora", "peft_lora"),
        jit_compile=False,
        sequence_length=16,
        rounds=1,
        steps=2,
        peak_sizes=(128,),
    )
    rows = result["methods"]
    # LoRA rank 8 on query and value of 2 layers, 32 wide: 2·2·(32·8 + 8·32);
    # PEFT's on GPT-2's fused c_attn (32 -> 96): 2·(32·8 + 8·96), the same.
    assert rows["lora"]["trainable_params"] == 2 * 2 * (32 * 8 + 8 * 32)
    assert rows["peft_lora"]["trainable_params"] == 2 * (32 * 8 + 8 * 96)
    assert rows["full"]["trainable_params"] > 40_000
    assert result["peer"]["hf_params"] == result["peer"]["keras_params"]
    assert result["peer"]["torch_threads"] == os.cpu_count()
    for row in rows.values():
        assert row["tokens_per_s"] == pytest.approx(4 * 16 / row["median_s"])
        assert row["n"] == 2 and row["mfu"] > 0
    assert "vs_peft_lora" in rows["lora"]
    assert rows["lora"]["first_step_vs_peft_lora"] == pytest.approx(
        rows["lora"]["first_step_s"] / rows["peft_lora"]["first_step_s"]
    )
    assert set(result["switch_cost"]) == set(rows)
    report = bench_report(train=[result])
    text = markdown(report)
    assert "| lora | 2,048 |" in text and "## Targets" in text
    assert "| peft_lora | 2,048 |" in text and "vs PEFT LoRA" in text
    checks = {name: met for name, _, _, met in targets(report)}
    assert set(checks) == {
        "LoRA's first step ≤ 3× PEFT LoRA's",
        "LoRA ≥ 1.3× PEFT LoRA tokens/s",
        "LoRA ≥ 1.4× full fine-tuning tokens/s",
    }
    assert np.isfinite(rows["lora"]["vs_full"]["ratio"])
