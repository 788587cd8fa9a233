"""docs/results.png: the three tasks' comparisons side by side, from the
compare.json files `tf-adapters compare` wrote (mean ± std over seeds).

Usage:
    python docs/make_results_figure.py SENTIMENT.json QA.json PLOTS.json \\
        OUT.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def panel(ax, result):
    rows = [r for r in result["rows"] if not r.get("error")]
    names = [r["method"].replace(" (zero-shot)", "") for r in rows]
    values = [r["metric"] for r in rows]
    errors = [r.get("metric_std", 0.0) for r in rows]
    ax.barh(names, values, xerr=errors, color="tab:blue", capsize=2)
    for y, (value, err) in enumerate(zip(values, errors, strict=True)):
        text = f" {value:.3f}" + (f" ± {err:.3f}" if err else "")
        ax.text(value + err, y, text, va="center", fontsize=7)
    ax.invert_yaxis()
    top = max(v + e for v, e in zip(values, errors, strict=True))
    ax.set_xlim(0, top * 1.35)
    better = "higher" if result["higher_is_better"] else "lower"
    seeds = len(result.get("seeds") or [0])
    ax.set_xlabel(f"{result['metric']} ({better} is better)")
    ax.set_title(
        f"{result['task']} on {result['data']}\n"
        f"{result['test_examples']} test examples, {seeds} seed(s)",
        fontsize=9,
    )


def main(paths, out):
    results = [json.load(open(p)) for p in paths]
    fig, axes = plt.subplots(
        1, len(results), figsize=(5 * len(results), 4.2), squeeze=False
    )
    for ax, result in zip(axes[0], results, strict=True):
        panel(ax, result)
    fig.suptitle(
        f"{results[0]['model']} model, {results[0]['steps']} steps × batch "
        f"{results[0]['batch_size']}: mean ± standard deviation over seeds"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
