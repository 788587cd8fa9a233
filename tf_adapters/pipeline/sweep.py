"""`tf-adapters sweep`: each method's hyperparameters, chosen on a
validation split.

For every method, each point of its grid (`GRID`: learning rates, and
where it matters adapter options such as the bottleneck size) runs as a
`finetune` process with the same base, data, steps and batch, holding out
`validation_size` training examples. The point with the best validation
metric wins (`select`); the test split is evaluated too, for the table,
but never chooses. The winners are what the configs' defaults must be
(`tests/pipeline/test_sweep_defaults.py` checks `docs/sweep.json`).
"""

import dataclasses
import itertools
import math

from tf_adapters.core.validation import check_int
from tf_adapters.methods import registry
from tf_adapters.pipeline import provenance
from tf_adapters.pipeline.compare import BASE_ROW
from tf_adapters.pipeline.compare import COMPARE_METHODS
from tf_adapters.pipeline.compare import rows_of
from tf_adapters.pipeline.compare import run_all
from tf_adapters.pipeline.compare import run_configs
from tf_adapters.pipeline.config import SHORTCUTS
from tf_adapters.pipeline.sweep_report import write_sweep

# Each method's grid, values in increasing order (a tie goes to the first):
# learning rates bracketing each family's usual range, widened where the
# first sweep's winner was at an end (IA3, AdaLoRA and prompt tuning won
# at 1e-2, so 3e-2 was added; prefix tuning at 1e-3, so 3e-4; over three
# seeds prefix tuning won at 1e-4, so 3e-5; Houlsby, re-swept over 3
# seeds at the current prompt, won at 1e-4, so 3e-5). Adapter options (e.g.
# `bottleneck_size`), the warm-up and the weights' moving average can be
# swept too (`--grid`).
GRID = {
    "linear_probe": {"learning_rate": [1e-3, 3e-3, 1e-2]},
    "full": {"learning_rate": [1e-5, 3e-5, 1e-4]},
    "lora": {"learning_rate": [3e-4, 1e-3, 3e-3]},
    "houlsby": {"learning_rate": [3e-5, 1e-4, 3e-4, 1e-3]},
    "pfeiffer": {"learning_rate": [1e-4, 3e-4, 1e-3]},
    "parallel": {"learning_rate": [3e-4, 1e-3, 3e-3]},
    "ia3": {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2]},
    "prompt_tuning": {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2]},
    "prefix_tuning": {"learning_rate": [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]},
    "adalora": {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2]},
}
SWEEP_METHODS = tuple(GRID)
# Options of the run itself; every other grid key is an adapter option.
RUN_OPTIONS = ("learning_rate", "warmup_steps", "ema_momentum")


def points(grid):
    """`[{option: value}]`: every combination of `grid`'s values, in order.

    Example:
    >>> points({"learning_rate": [1e-3, 1e-2], "rank": [4]})
    [{'learning_rate': 0.001, 'rank': 4}, {'learning_rate': 0.01, 'rank': 4}]
    """
    keys = list(grid)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def point_label(method, point):
    """A run's folder name: `lora/learning_rate=0.001`."""
    return (
        method
        + "/"
        + ",".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in point.items()
        )
    )


def select(scores, higher_is_better=True):
    """The index of the winning point: the best score; a tie (equal to
    the best within 1e-9) goes to the earliest point; `None` scores
    (failed runs) and non-finite ones never win; `None` if none finished.

    Example:
    >>> select([0.80, 0.86, 0.86, None])
    1
    >>> select([12.0, 9.5, float("nan")], higher_is_better=False)
    1
    >>> select([None, None]) is None
    True
    """
    finite = [
        (i, s)
        for i, s in enumerate(scores)
        if s is not None and math.isfinite(s)
    ]
    if not finite:
        return None
    sign = 1 if higher_is_better else -1
    best = max(sign * s for _, s in finite)
    return next(i for i, s in finite if sign * s >= best - 1e-9)


def on_edge(grid, point):
    """The grid options whose winning value is the first or last of more
    than one: the best may lie outside the grid (widen it)."""
    return [
        k
        for k, values in grid.items()
        if len(values) > 1 and point[k] in (values[0], values[-1])
    ]


def check_grid(grid, methods):
    """Refuses an unknown method or option, or an empty or unsorted grid."""
    for method in methods:
        if method not in COMPARE_METHODS:
            raise ValueError(
                f"Unknown method {method!r} in the sweep; expected one of "
                f"{list(COMPARE_METHODS)}."
            )
        spec = grid.get(method)
        if not spec:
            raise ValueError(
                f"No grid for {method!r}: give --grid {method}:"
                "learning_rate=1e-4,1e-3."
            )
        allowed = set(RUN_OPTIONS)
        if method in registry.SHORTCUTS:
            allowed |= set(registry.option_names(method))
        for option, values in spec.items():
            if option not in allowed:
                raise ValueError(
                    f"{method!r} has no option {option!r} to sweep; options: "
                    f"{sorted(allowed)}."
                )
            if not values or list(values) != sorted(values):
                raise ValueError(
                    f"The grid of {method}'s {option} must list values in "
                    f"increasing order. Received: {values!r}."
                )


def run_sweep(
    config,
    methods=SWEEP_METHODS,
    grid=None,
    output="runs/sweep",
    reuse=False,
    seeds=1,
):
    """Runs every method's grid and picks each method's winner.

    Args:
        config: `FinetuneConfig`. Shared settings (model, data, task,
            steps, batch, seed...); its `validation_size` (200 if 0) is
            the split that chooses; its method and learning rate are not
            used.
        methods: list of str. Methods to sweep (`GRID`'s by default).
        grid: dict. `{method: {option: [values]}}` replacing `GRID`'s
            entries for those methods.
        output: str. Folder for each run and `sweep.{md,json}`.
        reuse: bool. Keep runs already in `output` with the same options.
        seeds: int. Seeds per point; the validation metric is their mean.

    Returns:
        dict: the `sweep.json` contents: every point's validation and test
        metrics, and `winners` (`{method: {"point", "validation",
        "test", "edge"}}`).
    """
    grid = {**GRID, **(grid or {})}
    check_grid(grid, methods)
    check_int("seeds", seeds, minimum=1)
    validation_size = config.validation_size or 200
    template = dataclasses.replace(
        config,
        adapter=None,
        learning_rate=None,
        validation_size=validation_size,
        **dict.fromkeys(SHORTCUTS),
    )
    options = config.adapter_options()
    plan = [
        (method, point, point_label(method, point))
        for method in methods
        for point in points(grid[method])
    ]
    runs = [
        (
            label,
            {
                "method": method,
                **{k: v for k, v in point.items() if k in RUN_OPTIONS},
                "adapter_options": {
                    k: v for k, v in point.items() if k not in RUN_OPTIONS
                },
            },
        )
        for method, point, label in plan
    ]
    configs = run_configs(template, runs, options, output, seeds)
    reports = run_all(configs, reuse)
    result = _result(config, grid, plan, reports, validation_size, seeds)
    write_sweep(result, output)
    return result


def _result(config, grid, plan, reports, validation_size, seeds):
    validation = {r["method"]: r for r in rows_of(reports, "validation")}
    test = {r["method"]: r for r in rows_of(reports, "adapted")}
    first = next(r for _, _, r in reports if r is not None)
    higher = first["higher_is_better"]
    table = []
    for method, point, label in plan:
        valid, tested = validation[label], test[label]
        table.append(
            {
                "method": method,
                "point": point,
                "validation": None if valid.get("error") else valid["metric"],
                "validation_std": valid.get("metric_std"),
                "test": None if tested.get("error") else tested["metric"],
                "test_std": tested.get("metric_std"),
                "train_seconds": tested.get("train_seconds"),
            }
        )
    winners = {}
    methods = list(dict.fromkeys(method for method, _, _ in plan))
    for method in methods:
        mine = [row for row in table if row["method"] == method]
        best = select([row["validation"] for row in mine], higher)
        if best is not None:
            winners[method] = {
                "point": mine[best]["point"],
                "validation": mine[best]["validation"],
                "test": mine[best]["test"],
                "edge": on_edge(grid[method], mine[best]["point"]),
            }
    base = validation.get(BASE_ROW)
    return {
        "task": config.task,
        "model": config.model,
        "data": config.data,
        "metric": first["metric"],
        "higher_is_better": higher,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "sequence_length": config.sequence_length,
        "seeds": list(range(config.seed, config.seed + seeds)),
        "split_seed": config.split_seed,
        "validation_examples": validation_size,
        "test_examples": first["test_examples"],
        "rule": "best mean validation metric; a tie goes to the earlier "
        "point of the grid; the test split never chooses",
        "grid": {m: grid[m] for m in methods},
        "base": None
        if base is None
        else {"validation": base["metric"], "test": test[BASE_ROW]["metric"]},
        "points": table,
        "winners": winners,
        "reproduce": provenance.reproduce(
            config,
            first.get("reproduce", {}).get("data_sha256"),
            command="tf-adapters sweep --methods " + " ".join(methods),
        ),
    }
