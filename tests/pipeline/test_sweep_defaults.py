"""The defaults in the configs are the recorded sweep's winners."""

import json
import pathlib

from tf_adapters.methods import registry
from tf_adapters.pipeline.config import default_learning_rate
from tf_adapters.pipeline.sweep import RUN_OPTIONS
from tf_adapters.pipeline.sweep import SWEEP_METHODS
from tf_adapters.pipeline.sweep import select

SWEEP = pathlib.Path(__file__).parents[2] / "docs" / "sweep.json"


def _sweep():
    return json.loads(SWEEP.read_text())


def test_the_sweep_covers_every_method_on_the_main_job():
    result = _sweep()
    assert (result["model"], result["task"], result["data"]) == (
        "embedded",
        "classification",
        "sentiment",
    )
    assert set(result["winners"]) == set(SWEEP_METHODS)
    # The main job's budget.
    assert (result["steps"], result["batch_size"]) == (48, 16)


def test_winners_follow_the_selection_rule():
    result = _sweep()
    for method, winner in result["winners"].items():
        mine = [p for p in result["points"] if p["method"] == method]
        best = select(
            [p["validation"] for p in mine], result["higher_is_better"]
        )
        assert mine[best]["point"] == winner["point"], method


def test_config_defaults_are_the_winners():
    for method, winner in _sweep()["winners"].items():
        for option, value in winner["point"].items():
            if option in RUN_OPTIONS:
                assert default_learning_rate(method) == value, method
            else:
                config = registry.make_adapter_config(method, {})
                assert getattr(config, option) == value, (method, option)
