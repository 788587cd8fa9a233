"""The bench's gradient checkpointing rows: LoRA with and without `--remat`
at sequence length 1,024, peak memory and tokens/s, and their table."""

import pytest

from bench import train
from bench.__main__ import plan
from bench.report import markdown
from tests.bench.fake_report import bench_report
from tf_adapters.training.remat import is_checkpointed


@pytest.mark.parametrize("quick", [False, True])
def test_the_plan_has_lora_with_and_without_remat(quick):
    runs = [r for r in plan(quick)["memory"] if "lora_remat" in r["methods"]]
    assert len(runs) == 1
    assert runs[0]["methods"] == ["lora", "lora_remat"]
    if not quick:
        assert runs[0]["sequence_length"] == 1024
        assert runs[0]["shape"] == "gpt2_small"


def test_a_remat_method_checkpoints_the_decoder_blocks():
    assert train.split_remat("lora_remat") == ("lora", True)
    assert train.split_remat("lora") == ("lora", False)
    model = train.build_trainer("tiny", "lora_remat", "float32", False)
    assert all(is_checkpointed(b) for b in model.backbone.transformer_layers)
    assert len(model.trainable_weights) == 8  # LoRA's, as for "lora"


def test_memory_row_with_remat_and_its_table():
    row = train.memory(
        "tiny",
        "lora_remat",
        jit_compile=False,
        batch_size=1,
        sequence_length=32,
    )
    assert row["method"] == "lora_remat" and len(row["steps_s"]) == 3
    assert row["tokens_per_s"] > 0
    assert row["peak_rss_mb"] >= row["after_build_mb"] > 0
    plain = dict(row, method="lora", peak_rss_mb=2 * row["peak_rss_mb"])
    plain["tokens_per_s"] = 2 * row["tokens_per_s"]
    run = dict(
        shape="tiny",
        sequence_length=32,
        batch_size=1,
        jit_compile=False,
        methods={"lora": plain, "lora_remat": row},
    )
    text = markdown(bench_report(memory=[run]))
    assert "gradient checkpointing (`--remat`)" in text
    assert "batch 1 × 32 tokens, jit_compile=False" in text
    lines = [line for line in text.splitlines() if line.startswith("| lora")]
    assert lines[0].startswith("| lora | no |") and lines[0].endswith("– |")
    assert lines[1].startswith("| lora | yes |")
    assert lines[1].endswith("| 0.50× | 0.50× |")
