"""Rendering a comparison: Markdown table, JSON and a PNG chart."""

import json
import os

from tf_adapters.core.atomic import atomic_write_text


def write_outputs(result, output):
    """Writes `compare.json`, `compare.md` and `compare.png` into `output`
    and prints the table; adds the chart's path to `result`."""
    os.makedirs(output, exist_ok=True)
    atomic_write_text(
        os.path.join(output, "compare.json"), json.dumps(result, indent=2)
    )
    table = markdown_table(result)
    atomic_write_text(os.path.join(output, "compare.md"), table + "\n")
    result["chart"] = plot_comparison(
        result, os.path.join(output, "compare.png")
    )
    print(table)


def metric_text(row):
    """`0.853` for one seed, `0.853 ± 0.006` (mean ± std) for several."""
    if len(row.get("seeds") or ()) > 1:
        return f"{row['metric']:.3f} ± {row['metric_std']:.3f}"
    return f"{row['metric']:.3f}"


def markdown_table(result):
    metric = result["metric"]
    seeds = result.get("seeds") or [result["seed"]]
    shown = f"{metric} (mean ± std)" if len(seeds) > 1 else metric
    lines = [
        f"| method | {shown} | learning rate | trainable params "
        "| trainable % | train s | s/step (median) | peak RSS MiB "
        "| checkpoint |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        if row.get("error"):
            lines.append(f"| {row['method']} | failed | | | | | | | |")
            continue
        step = row["step_seconds"]
        rss = row["peak_rss_mb"]
        rate = row.get("learning_rate")
        lines.append(
            f"| {row['method']} | {metric_text(row)} "
            f"| {'-' if rate is None else f'{rate:g}'} "
            f"| {row['trainable_params']:,} "
            f"| {row['trainable_percent']:.4f} "
            f"| {row['train_seconds']:.1f} "
            f"| {'-' if step is None else f'{step:.2f}'} "
            f"| {'-' if rss is None else f'{rss:,}'} "
            f"| {_size(row['checkpoint_bytes'])} |"
        )
    seed_text = (
        f"seeds {seeds[0]}-{seeds[-1]} (mean ± sample standard deviation "
        "over them)"
        if len(seeds) > 1
        else f"seed {seeds[0]}"
    )
    lines.append(
        f"\n{result['task']} on {result['data']} with {result['model']}: "
        f"{result['steps']} steps × batch {result['batch_size']} × "
        f"{result['sequence_length']} tokens, {seed_text}, "
        f"{result['test_examples']} test examples (split seed "
        f"{result.get('split_seed', 0)}); Adam at each row's learning rate."
    )
    others = other_metrics_table(result["rows"], metric, len(seeds) > 1)
    if others:
        lines += ["", *others]
    if len(seeds) > 1:
        lines += ["", *per_seed_table(result["rows"], seeds, metric)]
    return "\n".join(lines)


def other_metrics_table(rows, metric, several_seeds):
    """The task's other test metrics (e.g. exact match, ROUGE-L and
    response perplexity beside token F1), one row per method, means over
    the seeds; `[]` when the task has no other metric. Losses (the log of
    a perplexity shown) and counts (examples, tokens) are left out."""
    done = [r for r in rows if not r.get("error") and r.get("metrics")]
    names = [
        k
        for k in (done[0]["metrics"] if done else ())
        if k != metric
        and k not in ("count", "tokens")
        and not k.endswith("loss")
    ]
    if not names:
        return []
    mean = " (mean)" if several_seeds else ""
    lines = [
        "| method | " + " | ".join(f"{k}{mean}" for k in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for row in done:
        values = [row["metrics"].get(k) for k in names]
        lines.append(
            f"| {row['method']} | "
            + " | ".join("-" if v is None else f"{v:.3f}" for v in values)
            + " |"
        )
    return lines


def per_seed_table(rows, seeds, metric):
    """Each seed's headline metric, one row per method."""
    lines = [
        f"| method ({metric}) | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean ± std |",
        "|---|" + "---:|" * (len(seeds) + 1),
    ]
    for row in rows:
        if row.get("error") or not row.get("per_seed"):
            continue
        values = [
            "failed" if v is None else f"{v:.3f}" for v in row["per_seed"]
        ]
        lines.append(
            f"| {row['method']} | "
            + " | ".join(values)
            + f" | {metric_text(row)} |"
        )
    return lines


def _size(n):
    if n == 0:
        return "0"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def plot_comparison(result, path):
    """A PNG: the headline metric and the trainable share of each method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if not r.get("error")]
    names = [r["method"] for r in rows]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 0.45 * len(rows) + 1.6), sharey=True
    )
    values = [r["metric"] for r in rows]
    errors = [r.get("metric_std", 0.0) for r in rows]
    left.barh(names, values, xerr=errors, color="tab:blue")
    for y, value in enumerate(values):
        left.text(value, y, f" {value:.3f}", va="center", fontsize=8)
    left.set_xlim(0, max(values) * 1.15)
    left.set_xlabel(
        f"{result['metric']} on {result['test_examples']} test examples "
        f"({'higher' if result['higher_is_better'] else 'lower'} is better)"
    )
    left.invert_yaxis()
    percents = [r["trainable_percent"] for r in rows]
    floor = min((p for p in percents if p > 0), default=1.0) / 10
    right.barh(names, [p if p > 0 else 0 for p in percents], color="tab:orange")
    for y, p in enumerate(percents):
        label = "0 (frozen)" if p == 0 else f" {p:.3g}%"
        right.text(max(p, floor), y, label, va="center", fontsize=8)
    right.set_xscale("log")
    right.set_xlim(floor, 1000)
    right.set_xlabel("trainable parameters, % of the model (log scale)")
    fig.suptitle(
        f"{result['task']}: {result['data']}, {result['model']}, "
        f"{result['steps']} steps"
    )
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
