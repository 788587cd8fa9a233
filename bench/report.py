"""The Markdown report of a bench run, and the issue's targets checked."""


def _f(x, digits=2):
    return "–" if x is None else f"{x:,.{digits}f}"


def _ratio(r):
    if not r:
        return "–"
    return f"{r['ratio']:.2f}× ({r['min']:.2f}–{r['max']:.2f})"


def _train_table(run):
    lines = [
        f"**{run['shape']}, {run['dtype']}, jit_compile="
        f"{run['jit_compile']}**, batch {run['batch_size']} × "
        f"{run['sequence_length']} tokens, {run['rounds']} interleaved rounds"
        f" × {run['steps_per_round']} steps, N = {run['matmul_params']:,}",
        "",
        "| method | trainable params | step median (s) | IQR (s) | tokens/s "
        "| vs full (median of rounds, min–max) | first step (s) | MFU |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for method, row in run["methods"].items():
        vs = row.get("vs_full")
        if method == "lora" and row.get("vs_enable_lora"):
            vs_e = _ratio(row["vs_enable_lora"])
            extra = f"; vs enable_lora {vs_e}"
        else:
            extra = ""
        mfu = None if row.get("mfu") is None else 100 * row["mfu"]
        lines.append(
            f"| {method} | {row['trainable_params']:,} | "
            f"{_f(row['median_s'], 3)} | {_f(row['iqr_s'], 3)} | "
            f"{_f(row['tokens_per_s'], 0)} | {_ratio(vs)}{extra} | "
            f"{_f(row['first_step_s'], 1)} | "
            f"{'–' if mfu is None else f'{mfu:.1f} %'} |"
        )
    return lines


def targets(result):
    """[(target, measured, met)] for the issue's targets that were run."""
    out = []
    # The plan's first training run is the one the targets are about
    # (GPT-2-small shape, float32, XLA on, every method).
    runs = result.get("train") or [None]
    main = runs[0] if runs[0] and "full" in runs[0]["methods"] else None
    if main:
        rows = main["methods"]
        if "lora" in rows and "vs_full" in rows["lora"]:
            v = rows["lora"]["vs_full"]["ratio"]
            out.append(("LoRA ≥ 1.4× full fine-tuning tokens/s", v, v >= 1.4))
        if "lora" in rows and "vs_enable_lora" in rows["lora"]:
            v = rows["lora"]["vs_enable_lora"]["ratio"]
            out.append(("LoRA ≥ 1.15× Keras enable_lora", v, v >= 1.15))
        for method in ("houlsby", "pfeiffer", "parallel"):
            if method in rows:
                v = rows[method]["vs_full"]["ratio"]
                out.append((f"{method} ≥ 1.3× full fine-tuning", v, v >= 1.3))
    for batch in result.get("generate", {}).get("batches", []):
        rows = batch["variants"]
        b = batch["batch_size"]
        if "lora_merged" in rows:
            v = rows["lora_merged"]["vs_base"]["ratio"]
            out.append((f"merged LoRA ≥ 0.98× base (batch {b})", v, v >= 0.98))
        for name in ("lora_unmerged", "houlsby"):
            if name in rows:
                v = rows[name]["vs_base"]["ratio"]
                out.append(
                    (
                        f"{name} overhead ≤ 10 % (≥ 0.909× base, batch {b})",
                        v,
                        v >= 1 / 1.1,
                    )
                )
    for mem in result.get("memory", []):
        rows = mem["methods"]
        if "full" in rows and "lora" in rows:
            v = rows["lora"]["peak_rss_mb"] / rows["full"]["peak_rss_mb"]
            out.append(("LoRA peak memory ≤ 0.7× full", v, v <= 0.7))
    return out


def markdown(result):
    m = result["machine"]
    lines = [
        f"# Benchmark ({result['date']})",
        "",
        f"`{result['command']}` on {m['cpu']}, {m['cores']} cores; "
        f"TensorFlow {m['tensorflow']}, Keras {m['keras']}, keras-hub "
        f"{m['keras_hub']}. Measured float32 matmul peak: "
        f"{result['matmul_peak_gflops']:.1f} GFLOP/s (MFU counts 6N FLOPs "
        "per token for full fine-tuning, 4N for frozen-base methods).",
        "",
    ]
    if result.get("train"):
        lines += ["## Training", ""]
        for run in result["train"]:
            lines += _train_table(run) + [""]
    if result.get("memory"):
        lines += ["## Peak memory (one process per method, 3 steps)", ""]
        for mem in result["memory"]:
            rows = mem["methods"]
            full = rows.get("full", {}).get("peak_rss_mb")
            lines += [
                f"**{mem['shape']}**",
                "",
                "| method | peak RSS (MiB) | after building (MiB) | vs full |",
                "|---|---:|---:|---:|",
            ]
            for method, row in rows.items():
                vs = f"{row['peak_rss_mb'] / full:.2f}×" if full else "–"
                lines.append(
                    f"| {method} | {row['peak_rss_mb']:,.0f} | "
                    f"{row['after_build_mb']:,.0f} | {vs} |"
                )
            lines.append("")
    gen = result.get("generate")
    if gen:
        lines += [
            "## Generation",
            "",
            f"**{gen['shape']}**, greedy, prompt {gen['prompt_length']} + "
            f"{gen['new_tokens']} new tokens, jit_compile="
            f"{gen['jit_compile']}, {gen['rounds']} interleaved rounds",
            "",
            "| batch | variant | new tokens/s | vs base | first call (s) |",
            "|---:|---|---:|---|---:|",
        ]
        for batch in gen["batches"]:
            for name, row in batch["variants"].items():
                lines.append(
                    f"| {batch['batch_size']} | {name} | "
                    f"{_f(row['new_tokens_per_s'], 1)} | "
                    f"{_ratio(row.get('vs_base'))} | "
                    f"{_f(row['first_call_s'], 1)} |"
                )
        lines.append("")
    srv = result.get("serve")
    if srv:
        lines += [
            "## Serving",
            "",
            f"**{srv['shape']}** + LoRA exported (merged) with "
            f"`export_saved_model(text=False)` in {srv['export_s']:.1f} s; "
            f"batch {srv['batch_size']}, prompt {srv['prompt_length']}, "
            f"{srv['new_tokens']} new tokens; same greedy tokens as Keras: "
            f"{srv['same_tokens']}",
            "",
            "| call | median (ms) | IQR (ms) | first call (s) "
            "| speed vs Keras |",
            "|---|---:|---:|---:|---|",
        ]
        for name, row in srv["calls"].items():
            lines.append(
                f"| {name} | {1000 * row['median_s']:,.1f} | "
                f"{1000 * row['iqr_s']:,.1f} | {row['first_call_s']:.2f} | "
                f"{_ratio(row.get('vs_keras'))} |"
            )
        lines.append("")
    checks = targets(result)
    if checks:
        lines += [
            "## Targets",
            "",
            "| target | measured | met |",
            "|---|---:|---|",
        ]
        for name, value, met in checks:
            lines.append(f"| {name} | {value:.2f} | {'yes' if met else 'NO'} |")
        lines.append("")
    return "\n".join(lines)
