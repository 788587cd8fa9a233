"""Rendering a sweep: `sweep.json` and a Markdown table with the winners."""

import json
import os

from tf_adapters.core.atomic import atomic_write_text


def write_sweep(result, output):
    """Writes `sweep.json` and `sweep.md` into `output`; prints the table."""
    os.makedirs(output, exist_ok=True)
    atomic_write_text(
        os.path.join(output, "sweep.json"), json.dumps(result, indent=2)
    )
    table = sweep_markdown(result)
    atomic_write_text(os.path.join(output, "sweep.md"), table + "\n")
    print(table)


def _value(mean, std):
    if mean is None:
        return "failed"
    return f"{mean:.3f}" if not std else f"{mean:.3f} ± {std:.3f}"


def _point(point):
    return ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in point.items()
    )


def sweep_markdown(result):
    metric = result["metric"]
    lines = [
        f"| method | point | validation {metric} | test {metric} "
        "| train s | chosen |",
        "|---|---|---:|---:|---:|:---:|",
    ]
    base = result.get("base")
    if base:
        lines.append(
            f"| frozen base | - | {base['validation']:.3f} "
            f"| {base['test']:.3f} | 0 | |"
        )
    winners = result["winners"]
    for row in result["points"]:
        won = winners.get(row["method"], {}).get("point") == row["point"]
        seconds = row.get("train_seconds")
        lines.append(
            f"| {row['method']} | {_point(row['point'])} "
            f"| {_value(row['validation'], row.get('validation_std'))} "
            f"| {_value(row['test'], row.get('test_std'))} "
            f"| {'-' if seconds is None else f'{seconds:.0f}'} "
            f"| {'✓' if won else ''} |"
        )
    seeds = ", ".join(map(str, result["seeds"]))
    lines.append(
        f"\n{result['task']} on {result['data']} with {result['model']}: "
        f"{result['steps']} steps × batch {result['batch_size']} × "
        f"{result['sequence_length']} tokens; seeds {seeds}"
        f"; {result['validation_examples']} validation and "
        f"{result['test_examples']} test examples (split seed "
        f"{result['split_seed']}). Rule: {result['rule']}."
    )
    edges = [
        f"{m} ({', '.join(w['edge'])})" for m, w in winners.items() if w["edge"]
    ]
    if edges:
        lines.append(
            "Winners on the edge of their grid (the best may lie outside "
            f"it): {'; '.join(edges)}."
        )
    return "\n".join(lines)
