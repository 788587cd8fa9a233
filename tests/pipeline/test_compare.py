import dataclasses
import json
import os

import pytest

from tf_adapters.pipeline.compare import run_compare
from tf_adapters.pipeline.compare import variants
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.pipeline.config import default_learning_rate


def _labelled(tmp_path):
    words = [" airplane", " at", " airport", " the", " plane"]
    rows = [
        {
            "text": "".join(words[(i + j) % 5] for j in range(4)) + f" {i}",
            "label": "air" if i % 2 else "plane",
        }
        for i in range(30)
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def test_compare_end_to_end_quick(tmp_path, tiny_preset):
    config = FinetuneConfig(
        model=tiny_preset,
        data=_labelled(tmp_path),
        labels=["air", "plane"],
        template="{text} is",
        steps=2,
        batch_size=4,
        sequence_length=12,
        test_size=6,
        jit_compile=False,
        share_weights=True,
    )
    out = tmp_path / "compare"
    result = run_compare(config, ["full", "lora"], str(out))
    methods = [r["method"] for r in result["rows"]]
    # (The L2-SP rows' labels and options: test_variants_follow_the_options.)
    assert methods == [
        "frozen base (zero-shot)",
        "full",
        "lora",
        "lora+shared",
    ]
    rows = {r["method"]: r for r in result["rows"]}
    assert not any(r.get("error") for r in rows.values())
    assert rows["full"]["trainable_percent"] == 100.0
    assert (
        rows["lora+shared"]["trainable_params"] * 2
        == (rows["lora"]["trainable_params"])
    )
    for name in ("full", "lora"):
        assert rows[name]["peak_rss_mb"] > 100
        assert rows[name]["checkpoint_bytes"] > 0
        assert rows[name]["step_seconds"] > 0
    assert rows["full"]["checkpoint_bytes"] > rows["lora"]["checkpoint_bytes"]
    # Full fine-tuning gets its own learning rate; each run is one epoch.
    full = json.loads((out / "full" / "config.json").read_text())
    assert full["checkpoint_every"] == full["steps"]
    assert (rows["full"]["learning_rate"], rows["lora"]["learning_rate"]) == (
        default_learning_rate("full"),
        default_learning_rate("lora"),
    )
    # Each report says how to reproduce it: options, data hash, versions.
    report = json.loads((out / "lora" / "report.json").read_text())
    reproduce = report["reproduce"]
    assert reproduce["options"]["method"] == "lora"
    assert len(reproduce["data_sha256"]) == 64
    assert reproduce["versions"]["keras"]
    assert reproduce["machine"]["cpu_count"] >= 1
    for name in ("compare.md", "compare.json", "compare.png"):
        assert os.path.getsize(out / name) > 0
    table = (out / "compare.md").read_text()
    assert "| lora+shared |" in table
    assert json.loads((out / "compare.json").read_text())["rows"]
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"

    # --reuse keeps finished runs with the same options instead of rerunning.
    again = run_compare(
        dataclasses.replace(config, share_weights=False),
        ["full", "lora"],
        str(out),
        reuse=True,
    )
    rows_again = {r["method"]: r for r in again["rows"]}
    assert rows_again["lora"] == rows["lora"]
    assert (
        rows_again["frozen base (zero-shot)"] == rows["frozen base (zero-shot)"]
    )


def test_reuse_compares_the_learning_rate_each_run_trained_with():
    from tf_adapters.pipeline.compare import _same_run

    earlier = FinetuneConfig(method="lora", learning_rate=1e-3)
    saved = dataclasses.asdict(earlier)
    unset = FinetuneConfig(method="lora")  # the method's default, 1e-3
    assert unset.effective_learning_rate() == 1e-3
    # The raw options differ (1e-3 against unset); the rates do not.
    assert not _same_run(saved, unset, {})
    assert _same_run(saved, unset, {}, earlier_rate=1e-3)
    # A run that trained at another rate (an older default) is not reused.
    assert not _same_run(saved, unset, {}, earlier_rate=3e-4)
    other = FinetuneConfig(method="lora", learning_rate=3e-3)
    assert not _same_run(saved, other, {}, earlier_rate=1e-3)


def test_reuse_knows_earlier_runs_scored_at_their_training_length():
    from tf_adapters.pipeline.compare import _same_run

    # A config.json from before `eval_sequence_length`: those runs scored
    # the test reviews cut at `sequence_length` (64), not whole (128).
    saved = dataclasses.asdict(FinetuneConfig(method="lora"))
    del saved["eval_sequence_length"]
    assert not _same_run(saved, FinetuneConfig(method="lora"), {}, 1e-3)
    same = FinetuneConfig(method="lora", eval_sequence_length=64)
    assert _same_run(saved, same, {}, 1e-3)
    # A training state saved then resumes only where it scores the same.
    from tf_adapters.training.checkpointing import run_fingerprint
    from tf_adapters.training.checkpointing import saved_fingerprint

    state = run_fingerprint(FinetuneConfig())
    del state["eval_sequence_length"]
    assert saved_fingerprint(state) == run_fingerprint(same)


def test_reuse_knows_earlier_runs_were_not_calibrated():
    from tf_adapters.pipeline.compare import _same_run
    from tf_adapters.training.checkpointing import run_fingerprint
    from tf_adapters.training.checkpointing import saved_fingerprint

    # A config.json from before `calibration_size`: those runs scored
    # without a fitted label bias, unlike a run with today's default.
    saved = dataclasses.asdict(FinetuneConfig(method="lora"))
    del saved["calibration_size"]
    assert not _same_run(saved, FinetuneConfig(method="lora"), {}, 1e-3)
    plain = FinetuneConfig(method="lora", calibration_size=0)
    assert _same_run(saved, plain, {}, 1e-3)
    state = run_fingerprint(FinetuneConfig(method="lora"))
    del state["calibration_size"]
    assert saved_fingerprint(state) == run_fingerprint(plain)


def test_variants_follow_the_options():
    config = FinetuneConfig(task="causal_lm")
    labels = [label for label, _ in variants(config, ["linear_probe", "lora"])]
    assert labels == ["lora"]  # no linear probe outside classification
    runs = dict(variants(FinetuneConfig(l2sp=0.1), ["full", "lora", "ia3"]))
    assert list(runs) == ["full", "lora", "ia3", "full+l2sp", "lora+l2sp"]
    assert runs["full+l2sp"]["l2sp"] == 0.1 and runs["lora"]["l2sp"] == 0.0
    assert runs["full+l2sp"]["learning_rate"] == runs["full"]["learning_rate"]


def test_compare_rejects_unknown_methods(tmp_path):
    with pytest.raises(ValueError, match="`methods` must be"):
        run_compare(FinetuneConfig(), ["lora", "loha"], str(tmp_path))
