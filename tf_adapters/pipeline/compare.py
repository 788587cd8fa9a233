"""`tf-adapters compare`: every method on the same base, data and budget.

Each method runs as its own `tf-adapters finetune` process (same seed,
steps, batch and test split), so peak memory is measured per method and a
crash in one leaves the others. The first run also evaluates the frozen
base; the table has one row per method with the task's headline metric,
trainable parameters (count and %), training time, median time per step,
peak resident memory and checkpoint size, written as Markdown, JSON and a
PNG chart by `compare_report`.
"""

import dataclasses
import json
import logging
import os
import subprocess
import sys

from tf_adapters.core.atomic import atomic_write_text
from tf_adapters.core.validation import check_int
from tf_adapters.methods import registry
from tf_adapters.pipeline import provenance
from tf_adapters.pipeline.aggregate import numeric_metrics
from tf_adapters.pipeline.aggregate import seed_row
from tf_adapters.pipeline.compare_report import write_outputs
from tf_adapters.pipeline.config import BASELINE_LEARNING_RATES
from tf_adapters.pipeline.config import SHORTCUTS
from tf_adapters.pipeline.config import FinetuneConfig

log = logging.getLogger("tf_adapters.compare")

# Every registered adapter method, after the two baselines; variants such as
# `dora` or `pissa` run when asked for (`COMPARE_METHODS`).
DEFAULT_METHODS = (
    "linear_probe",
    "full",
    *registry.adapter_method_names(variants=False),
)
COMPARE_METHODS = ("linear_probe", "full", *registry.adapter_method_names())

# The frozen base's row in the tables.
BASE_ROW = "frozen base (zero-shot)"
# Full fine-tuning's default learning rate (one source: the config's).
FULL_LEARNING_RATE = BASELINE_LEARNING_RATES["full"]


def variants(
    config,
    methods,
    full_learning_rate=FULL_LEARNING_RATE,
    shared=None,
    fuse=None,
):
    """`(label, overrides)` for each run of the comparison.

    With `config.l2sp > 0` the full and LoRA runs are repeated with the
    L2-SP penalty; with `shared` (default: `config.share_weights`) the
    LoRA and Houlsby runs are repeated with weights shared across layers;
    with `config.loraplus_lr_ratio` the LoRA run is repeated with LoRA+;
    with `fuse` (trained adapters' folders) a fusion of them is trained.
    """
    shared = config.share_weights if shared is None else shared
    runs = [
        (method, {"method": method})
        for method in methods
        if method != "linear_probe" or config.task == "classification"
    ]
    if config.l2sp > 0:
        runs += [
            (f"{m}+l2sp", {"method": m, "l2sp": config.l2sp})
            for m in ("full", "lora")
            if m in methods
        ]
    if shared:
        runs += [
            (f"{m}+shared", {"method": m, "share_weights": True})
            for m in ("lora", "houlsby")
            if m in methods
        ]
    if config.loraplus_lr_ratio is not None and "lora" in methods:
        ratio = config.loraplus_lr_ratio
        runs += [
            ("lora+loraplus", {"method": "lora", "loraplus_lr_ratio": ratio})
        ]
    if fuse:
        runs += [("fusion", {"method": "fusion", "fuse": list(fuse)})]
    plain = {
        "l2sp": 0.0,
        "share_weights": None,
        "loraplus_lr_ratio": None,
        "fuse": None,
    }
    runs = [(label, {**plain, **overrides}) for label, overrides in runs]
    for _, overrides in runs:
        if overrides["method"] == "full":
            # `--learning-rate` is the adapters'; full fine-tuning has its own.
            overrides["learning_rate"] = full_learning_rate
    return runs


def run_compare(
    config,
    methods=DEFAULT_METHODS,
    output="runs/compare",
    full_learning_rate=FULL_LEARNING_RATE,
    reuse=False,
    adapter_options=None,
    fuse=None,
    seeds=1,
):
    """Runs every method of the comparison; returns the result dict.

    Args:
        config: `FinetuneConfig`. Shared settings (model, data, task, steps,
            batch, seed...). Its `l2sp`, `share_weights` and
            `loraplus_lr_ratio` add the regularized, shared and LoRA+
            variants; its `method` is not used.
        methods: list of str. Methods to compare.
        output: str. Folder for each run and the tables.
        full_learning_rate: float. Learning rate of the full fine-tuning
            runs (the adapters use `config.learning_rate`, or each its own
            default when it is unset).
        reuse: bool. Keep the result of a run already in `output` whose
            options are the same (to finish an interrupted comparison, or
            add methods to one); others run again.
        adapter_options: dict. Adapter options for the runs, each given to
            the methods that have it (e.g. `rank` to LoRA,
            `bottleneck_size` to the bottlenecks), on top of `config`'s.
        fuse: list of str. Trained adapters' folders: adds a `fusion` row
            (AdapterFusion over them, trained on this task).
        seeds: int. Runs of each method, with seeds `config.seed` to
            `config.seed + seeds - 1` (adapter initialization and batch
            order; the test split is `config.split_seed`'s for all). Rows
            give the mean ± standard deviation and each seed's value.
    """
    unknown = [m for m in methods if m not in COMPARE_METHODS]
    if unknown or not methods:
        raise ValueError(
            f"`methods` must be a non-empty list from {list(COMPARE_METHODS)}."
            f" Received: {list(methods)}."
        )
    options = {**config.adapter_options(), **(adapter_options or {})}
    registry.check_option_names(options, "`adapter_options`")
    shared = bool(options.pop("share_weights", False))
    # Each run gets its adapter options from `options`, per method.
    template = dataclasses.replace(
        config, adapter=None, **dict.fromkeys(SHORTCUTS)
    )
    check_int("seeds", seeds, minimum=1)
    runs = variants(template, methods, full_learning_rate, shared, fuse)
    configs = run_configs(template, runs, options, output, seeds)
    reports = run_all(configs, reuse)
    rows = rows_of(reports)
    if not any("error" not in r for r in rows):
        raise RuntimeError(f"Every run failed; see the logs in {output}.")
    first = next(r for _, _, r in reports if r is not None)
    seed_list = list(range(config.seed, config.seed + seeds))
    result = {
        "task": config.task,
        "model": config.model,
        "data": config.data,
        "metric": first["metric"],
        "higher_is_better": first["higher_is_better"],
        "steps": config.steps,
        "batch_size": config.batch_size,
        "sequence_length": config.sequence_length,
        "seed": config.seed,
        "seeds": seed_list,
        "split_seed": config.split_seed,
        "learning_rate": config.learning_rate,
        "full_learning_rate": full_learning_rate,
        "test_examples": first["test_examples"],
        "rows": rows,
        "reproduce": provenance.reproduce(
            config,
            first.get("reproduce", {}).get("data_sha256"),
            command=_command(methods, seeds, fuse),
        ),
    }
    write_outputs(result, output)
    return result


def _base_run(config, runs):
    """The run that also evaluates the frozen base: the first whose model
    scores with the LM itself (a linear probe's new head is random before
    training), or `None`."""
    if config.task == "classification" and config.head == "linear":
        return None  # an untrained head says nothing about the base
    return next(
        (i for i, (_, o) in enumerate(runs) if o["method"] != "linear_probe"),
        None,
    )


def _command(methods, seeds, fuse):
    parts = ["tf-adapters compare --methods", *methods]
    if seeds > 1:
        parts += ["--seeds", str(seeds)]
    if fuse:
        parts += ["--fuse", *fuse]
    return " ".join(parts) + " (plus the options in `options`)"


def run_configs(config, runs, options, output, seeds=1):
    """`[(label, seed, FinetuneConfig)]`, all validated before anything
    runs: each run of `runs` once per seed, in `output/LABEL` (one seed)
    or `output/LABEL/seed-S`. Only the first seed's base run evaluates
    the frozen base (the test split does not depend on the seed)."""
    base_run = _base_run(config, runs)
    configs = []
    for i, (label, overrides) in enumerate(runs):
        changes = {k: v for k, v in overrides.items() if k != "method"}
        options_here = {**options, **changes.pop("adapter_options", {})}
        for k in range(seeds):
            seed = config.seed + k
            folder = os.path.join(output, label)
            if seeds > 1:
                folder = os.path.join(folder, f"seed-{seed}")
            run_config = config.for_method(
                overrides["method"],
                options_here,
                **changes,
                seed=seed,
                output=folder,
                export=False,
                evaluate_base=(i == base_run and k == 0),
                # One epoch: no training-state saves inside the timed steps.
                checkpoint_every=config.steps,
            )
            configs.append((label, seed, run_config))
    return configs


def run_all(configs, reuse):
    """`[(label, seed, report or None)]`: each run in its own process (or
    its earlier result, with `reuse`)."""
    reports = []
    for label, seed, run_config in configs:
        run_dir = run_config.output
        report = _reused(run_config, run_dir) if reuse else None
        if report is None:
            report = _run_child(run_config, run_dir, label)
        else:
            log.info("compare: reusing %s", run_dir)
        reports.append((label, seed, report))
    return reports


def grouped(reports):
    """`{label: [(seed, report or None)]}`, in the runs' order."""
    groups = {}
    for label, seed, report in reports:
        groups.setdefault(label, []).append((seed, report))
    return groups


def rows_of(reports, split="adapted"):
    """Table rows: the frozen base first (if evaluated), then one row per
    label with its seeds aggregated (`aggregate.seed_row`); `split` is the
    report's metrics to use (`"adapted"`: test, or `"validation"`)."""
    rows = []
    base_key = "base" if split == "adapted" else "base_validation"
    for label, runs in grouped(reports).items():
        for _, report in runs:
            if report is not None and report.get(base_key) is not None:
                rows.insert(0, _base_row(report, base_key))
        rows.append(seed_row(label, runs, lambda r: r[split]))
    return rows


def _same_run(earlier, run_config, defaults, earlier_rate=None):
    """Whether two runs' options agree on everything that shapes training
    (adapters compared by the config they resolve to); an option the
    earlier run did not know yet counts as its default. `earlier_rate`,
    the learning rate the earlier run trained with (its report's), is
    compared with the rate `run_config` resolves to, so a run that named
    a method's default rate is the same as one that left it unset (and
    one that left it unset under an older default is not)."""
    # Here, not at the top: `checkpointing` loads Keras, and the CLI's
    # parser reads this module's method lists.
    from tf_adapters.training.checkpointing import RESUMABLE
    from tf_adapters.training.checkpointing import run_fingerprint
    from tf_adapters.training.checkpointing import saved_fingerprint
    from tf_adapters.training.checkpointing import with_old_options

    if "adapter" in earlier:  # written by this version
        earlier = with_old_options(earlier)
        try:
            saved = run_fingerprint(FinetuneConfig.from_dict(earlier))
        except (TypeError, ValueError):
            return False
    else:
        saved = saved_fingerprint(earlier)
    now = run_fingerprint(run_config)
    if earlier_rate is None:  # unknown: the options as they were given
        saved["learning_rate"] = earlier.get("learning_rate")
        now["learning_rate"] = run_config.learning_rate
    else:
        saved["learning_rate"] = earlier_rate
    keys = (set(saved) | set(now)) - RESUMABLE - {"checkpoint_every"}
    return all(
        saved.get(k, defaults.get(k)) == now.get(k, defaults.get(k))
        for k in keys
    )


def _reused(run_config, run_dir):
    """The report of an earlier run of the same options, if there is one."""
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            earlier = json.load(f)
        with open(os.path.join(run_dir, "report.json")) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(run_config)
        if f.default is not dataclasses.MISSING
    }
    rate = report.get("learning_rate")
    if not _same_run(earlier, run_config, defaults, rate):
        return None
    if run_config.evaluate_base and not report.get("base"):
        return None
    return report


def _run_child(run_config, run_dir, label):
    os.makedirs(run_dir, exist_ok=True)
    config_path = os.path.join(run_dir, "config.json")
    atomic_write_text(
        config_path, json.dumps(dataclasses.asdict(run_config), indent=2)
    )
    log.info("compare: running %s (seed %d)", label, run_config.seed)
    report_path = os.path.join(run_dir, "report.json")
    if os.path.exists(report_path):
        os.remove(report_path)
    with open(os.path.join(run_dir, "log.txt"), "w") as log_file:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tf_adapters_cli",  # the `tf-adapters` command: quiet logs
                "finetune",
                "--config",
                config_path,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0 or not os.path.exists(report_path):
        log.error(
            "compare: %s failed (exit %d); see %s",
            label,
            done.returncode,
            os.path.join(run_dir, "log.txt"),
        )
        return None
    with open(report_path) as f:
        return json.load(f)


def _base_row(report, key="base"):
    return {
        "method": BASE_ROW,
        "metric": report[key][report["metric"]],
        "metric_std": 0.0,
        "metrics": numeric_metrics(report[key]),
        "trainable_params": 0,
        "trainable_percent": 0.0,
        "train_seconds": 0.0,
        "step_seconds": None,
        "peak_rss_mb": None,
        "checkpoint_bytes": 0,
    }
