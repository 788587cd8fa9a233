"""The issue's performance targets, checked on a bench result."""


def _target(name, paired, row, other, threshold, at_most=False):
    """(target, paired ratio, ratio of medians, met) of one target."""
    medians = None if row is None else other["median_s"] / row["median_s"]
    values = [v for v in (paired["ratio"], medians) if v is not None]
    passes = [v <= threshold if at_most else v >= threshold for v in values]
    if all(passes):
        met = "yes"
    elif not any(passes):
        met = "NO"
    else:
        met = "paired only" if passes[0] else "medians only"
    return name, paired["ratio"], medians, met


# (method, compared with, at least, target): issue 21's training targets
# (and round 1's against Keras's own LoRA), checked when both rows ran.
TRAIN_TARGETS = (
    ("lora", "peft_lora", 1.3, "LoRA ≥ 1.3× PEFT LoRA tokens/s"),
    ("lora", "full", 1.4, "LoRA ≥ 1.4× full fine-tuning tokens/s"),
    ("lora", "enable_lora", 1.15, "LoRA ≥ 1.15× Keras enable_lora"),
    ("ia3", "full", 1.4, "ia3 ≥ 1.4× full fine-tuning"),
    ("houlsby", "full", 1.4, "houlsby ≥ 1.4× full fine-tuning"),
    ("pfeiffer", "full", 1.4, "pfeiffer ≥ 1.4× full fine-tuning"),
    ("parallel", "full", 1.4, "parallel ≥ 1.4× full fine-tuning"),
)


def _train_targets(rows):
    out = []
    first = rows.get("lora", {}).get("first_step_vs_peft_lora")
    if first is not None:  # seconds over seconds: lower is better
        out.append(
            _target(
                "LoRA's first step ≤ 3× PEFT LoRA's",
                {"ratio": first},
                None,
                None,
                3.0,
                at_most=True,
            )
        )
    for method, other, threshold, name in TRAIN_TARGETS:
        ratio = rows.get(method, {}).get(f"vs_{other}")
        if ratio is not None:
            out.append(
                _target(name, ratio, rows[method], rows[other], threshold)
            )
    return out


def targets(result):
    """[(target, paired ratio, ratio of medians, met)] for the issue's
    targets that were run; `met` is "yes", "NO", "paired only" or
    "medians only"."""
    out = []
    # The plan's first training run is the one the targets are about
    # (GPT-2-small shape, float32, XLA on, every method).
    runs = result.get("train") or [None]
    if runs[0] and "full" in runs[0]["methods"]:
        out += _train_targets(runs[0]["methods"])
    # The others (e.g. the embedded model's shape) say which run they are.
    for run in runs[1:]:
        where = (
            f" ({run['shape']}, {run['dtype']}, XLA "
            f"{'on' if run['jit_compile'] else 'off'})"
        )
        out += [
            (name + where, *rest)
            for name, *rest in _train_targets(run["methods"])
        ]
    for batch in result.get("generate", {}).get("batches", []):
        rows, b = batch["variants"], batch["batch_size"]
        if "lora_merged" in rows:
            out.append(
                _target(
                    f"merged LoRA ≥ 0.98× base (batch {b})",
                    rows["lora_merged"]["vs_base"],
                    rows["lora_merged"],
                    rows["base"],
                    0.98,
                )
            )
        if "vs_transformers" in rows.get("base", {}):
            out.append(
                _target(
                    f"generation ≥ 2× transformers new tokens/s (batch {b})",
                    rows["base"]["vs_transformers"],
                    rows["base"],
                    rows["transformers"],
                    2.0,
                )
            )
        for name in ("lora_unmerged", "houlsby"):
            if name in rows:
                out.append(
                    _target(
                        f"{name} overhead ≤ 10 % (≥ 0.909× base, batch {b})",
                        rows[name]["vs_base"],
                        rows[name],
                        rows["base"],
                        1 / 1.1,
                    )
                )
    for mem in result.get("memory", []):
        rows = mem["methods"]
        if "full" in rows and "lora" in rows:
            v = rows["lora"]["peak_rss_mb"] / rows["full"]["peak_rss_mb"]
            out.append(
                _target(
                    "LoRA peak memory ≤ 0.7× full",
                    {"ratio": v},
                    None,
                    None,
                    0.7,
                    at_most=True,
                )
            )
    return out
