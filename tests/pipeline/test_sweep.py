import json

import pytest

from tests import finetune_runs
from tf_adapters.pipeline.aggregate import seed_row
from tf_adapters.pipeline.aggregate import spread
from tf_adapters.pipeline.compare import run_compare
from tf_adapters.pipeline.compare_report import markdown_table
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.pipeline.sweep import check_grid
from tf_adapters.pipeline.sweep import on_edge
from tf_adapters.pipeline.sweep import points
from tf_adapters.pipeline.sweep import run_sweep
from tf_adapters.pipeline.sweep import select


def _report(accuracy, seconds=10.0):
    return {
        "metric": "accuracy",
        "adapted": {
            "accuracy": accuracy,
            "f1": accuracy / 2,
            "seconds": 3,
            "tokens": 64,
            "loss": 0.5,
        },
        "learning_rate": 1e-3,
        "trainable_params": 8,
        "trainable_percent": 0.5,
        "train_seconds": seconds,
        "step_seconds_median": seconds / 10,
        "first_step_seconds": 2.0,
        "peak_rss_mb": 100 + seconds,
        "checkpoint_bytes": 64,
    }


def test_spread_of_known_numbers():
    s = spread([0.80, 0.84, 0.88])
    assert s["mean"] == pytest.approx(0.84)
    assert s["std"] == pytest.approx(0.04)  # sample std (n - 1)
    assert (s["min"], s["max"], s["n"]) == (0.80, 0.88, 3)
    with pytest.raises(ValueError, match="empty"):
        spread([])


def test_seed_row_aggregates_seeds_and_keeps_each():
    runs = [(0, _report(0.80, 10)), (1, _report(0.84, 30)), (2, None)]
    row = seed_row("lora", runs, lambda r: r["adapted"])
    assert row["metric"] == pytest.approx(0.82)
    assert row["metric_std"] == pytest.approx(0.0282842712)
    assert row["per_seed"] == [0.80, 0.84, None]
    assert row["failed_seeds"] == [2]
    assert row["metrics"]["f1"] == pytest.approx(0.41)
    assert row["train_seconds"] == 20.0  # median of the finished seeds
    assert row["peak_rss_mb"] == 130.0
    assert seed_row("x", [(0, None)], lambda r: r)["error"]
    table = markdown_table(
        {
            "metric": "accuracy",
            "seeds": [0, 1, 2],
            "seed": 0,
            "rows": [row],
            "task": "classification",
            "data": "d",
            "model": "m",
            "steps": 2,
            "batch_size": 4,
            "sequence_length": 8,
            "test_examples": 6,
        }
    )
    assert "| lora | 0.820 ± 0.028 | 0.001 |" in table
    assert "| lora | 0.800 | 0.840 | failed | 0.820 ± 0.028 |" in table
    # The task's other metrics, means over the finished seeds.
    assert "| method | f1 (mean) |\n|---|---:|\n| lora | 0.410 |" in table
    assert "tokens (mean)" not in table and "loss" not in table  # counts, logs


def test_selection_rule():
    # The best validation score wins; a tie goes to the earlier point.
    assert select([0.80, 0.86, 0.86]) == 1
    assert select([0.86, 0.80, 0.86]) == 0
    # Failed and non-finite runs never win; lower-is-better metrics.
    assert select([None, float("nan"), 0.5]) == 2
    assert select([20.0, 12.5, 14.0], higher_is_better=False) == 1
    assert select([None]) is None
    grid = {"learning_rate": [1e-4, 1e-3, 1e-2], "rank": [8]}
    assert on_edge(grid, {"learning_rate": 1e-2, "rank": 8}) == [
        "learning_rate"
    ]
    assert on_edge(grid, {"learning_rate": 1e-3, "rank": 8}) == []
    assert points({"a": [1, 2], "b": [3]}) == [
        {"a": 1, "b": 3},
        {"a": 2, "b": 3},
    ]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"lora": {"learning_rate": [1e-2, 1e-3]}}, "increasing order"),
        ({"lora": {"bottleneck_size": [8]}}, "no option 'bottleneck_size'"),
        ({"lora": {}}, "No grid for 'lora'"),
    ],
)
def test_bad_grids_are_refused(grid, message):
    with pytest.raises(ValueError, match=message):
        check_grid(grid, ["lora"])
    with pytest.raises(ValueError, match="Unknown method 'loha'"):
        check_grid({"loha": {"learning_rate": [1]}}, ["loha"])


def _tiny_config(tmp_path, tiny_preset, **changes):
    found = finetune_runs.options(tmp_path, tiny_preset, "run", steps=2)
    for key in ("output", "export", "evaluate_base", "checkpoint_every"):
        found.pop(key)
    return FinetuneConfig(**{**found, **changes})


def _in_process(run_config, run_dir, label):
    # Each run in this process: the child-process path is
    # test_compare.py's; this test is about seeds and the sweep's choice.
    from tf_adapters.pipeline import run_finetune

    return run_finetune(run_config)


def test_compare_seeds_and_sweep_quick(tmp_path, tiny_preset, monkeypatch):
    from tf_adapters.pipeline import compare

    monkeypatch.setattr(compare, "_run_child", _in_process)
    # Two seeds of one method: one row, each seed in its own folder, the
    # same test split (the split has its own seed).
    config = _tiny_config(tmp_path, tiny_preset, seed=3)
    out = tmp_path / "compare"
    result = run_compare(config, ["lora"], str(out), seeds=2)
    assert result["seeds"] == [3, 4]
    row = result["rows"][-1]
    assert row["method"] == "lora" and row["seeds"] == [3, 4]
    reports = [
        json.loads((out / "lora" / f"seed-{s}" / "report.json").read_text())
        for s in (3, 4)
    ]
    assert [r["seed"] for r in reports] == [3, 4]
    assert row["per_seed"] == [r["adapted"]["accuracy"] for r in reports]
    assert row["metric"] == pytest.approx(sum(row["per_seed"]) / 2)  # the mean
    assert reports[0]["base"] is not None and reports[1]["base"] is None
    # Different seeds: different initial adapters, so different losses.
    assert reports[0]["loss_curve"] != reports[1]["loss_curve"]
    assert "± " in (out / "compare.md").read_text()

    # The sweep: each point chosen on the validation split only.
    sweep_out = tmp_path / "sweep"
    # A run option besides the learning rate (the warm-up) is a grid key.
    grid = {"lora": {"learning_rate": [1e-3, 1e-1], "warmup_steps": [1]}}
    sweep = run_sweep(
        _tiny_config(tmp_path, tiny_preset, validation_size=8),
        ["lora"],
        grid,
        str(sweep_out),
    )
    assert [p["point"] for p in sweep["points"]] == points(grid["lora"])
    scores = [p["validation"] for p in sweep["points"]]
    winner = sweep["winners"]["lora"]
    assert winner["point"] == sweep["points"][select(scores)]["point"]
    assert winner["edge"] == ["learning_rate"]
    report = json.loads(
        (
            sweep_out
            / "lora"
            / "learning_rate=0.001,warmup_steps=1"
            / "report.json"
        ).read_text()
    )
    assert report["validation"]["count"] == 8
    assert report["test_examples"] == 6
    assert report["learning_rate"] == 1e-3
    assert report["reproduce"]["options"]["warmup_steps"] == 1
    assert sweep["base"]["validation"] == report["base_validation"]["accuracy"]
    saved = json.loads((sweep_out / "sweep.json").read_text())
    assert saved["winners"] == sweep["winners"]
    assert "✓" in (sweep_out / "sweep.md").read_text()
