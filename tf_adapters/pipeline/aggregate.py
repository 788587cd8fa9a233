"""Several seeds of one method as one table row: mean ± standard
deviation of the metrics, medians of the timings, and each seed's value.

Example:
>>> from tf_adapters.pipeline.aggregate import spread
>>> s = spread([0.85, 0.86, 0.87])
>>> round(s["mean"], 6), round(s["std"], 6), s["n"]
(0.86, 0.01, 3)
>>> spread([0.5])["std"]
0.0
"""

import math
import statistics


def spread(values):
    """`{"mean", "std", "min", "max", "n"}` of `values`; `std` is the
    sample standard deviation (n − 1 in the denominator; 0 for one value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("`values` is empty: no run of this row finished.")
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def numeric_metrics(metrics):
    """The numbers of a metrics dict (not lists, not `"seconds"`): what a
    table row keeps."""
    return {
        k: v
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and k != "seconds"
    }


def seed_row(label, reports, metric_of):
    """One row from `[(seed, report or None)]` of the same method.

    `metric_of(report)` gives a report's metrics dict (the adapted model's
    test metrics, or the validation ones). The row's `metric` is the mean
    of the headline metric over the seeds that finished, `metric_std` its
    spread, `per_seed` each seed's value (`None` for a failed run);
    numeric metrics are averaged, timings are medians. A row with no
    finished seed is `{"method": label, "error": True}`.
    """
    done = [(seed, r) for seed, r in reports if r is not None]
    if not done:
        return {"method": label, "error": True}
    first = done[0][1]
    headline = first["metric"]
    values = [metric_of(r)[headline] for _, r in done]
    if not all(math.isfinite(v) for v in values):
        return {"method": label, "error": True}
    summary = spread(values)
    numbers = {
        k: statistics.fmean(metric_of(r)[k] for _, r in done)
        for k in numeric_metrics(metric_of(first))
    }
    by_seed = dict(reports)
    return {
        "method": label,
        "metric": summary["mean"],
        "metric_std": summary["std"],
        "seeds": [seed for seed, _ in reports],
        "per_seed": [
            None if by_seed[s] is None else metric_of(by_seed[s])[headline]
            for s, _ in reports
        ],
        "failed_seeds": [s for s, r in reports if r is None],
        "metrics": numbers,
        "learning_rate": first.get("learning_rate"),
        "trainable_params": first["trainable_params"],
        "trainable_percent": first["trainable_percent"],
        "train_seconds": _median(r["train_seconds"] for _, r in done),
        "step_seconds": _median(r["step_seconds_median"] for _, r in done),
        "first_step_seconds": _median(r["first_step_seconds"] for _, r in done),
        "peak_rss_mb": max(r["peak_rss_mb"] for _, r in done),
        "checkpoint_bytes": first["checkpoint_bytes"],
        # The first seed's every option (the others differ in `seed` and
        # `output` only): with `reproduce` in the result, what reruns it.
        "options": first.get("reproduce", {}).get("options"),
    }


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
