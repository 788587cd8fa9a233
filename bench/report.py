"""The Markdown report of a bench run, and the issue's targets checked.

What the tables promise:
- every "vs" cell gives two ratios, labelled: `paired` is the median over
  rounds of the within-round ratio (min-max over rounds), robust to the
  machine changing speed between rounds; `medians` is the ratio of the two
  rows' median step times, which is the ratio of their tokens/s columns;
- an MFU above 100 % is never printed: the run's table says the measured
  peak is unreliable instead;
- a run that shared the machine (or whose load was not recorded) is
  labelled so (`bench.load`); no run is ever called quiet.
"""

from bench import load
from bench.targets import targets

MFU_INVALID = (
    "MFU not shown: the measured peak ({peak:.1f} GFLOP/s) is below what "
    "the run achieved ({achieved:.1f} GFLOP/s); peak measurement unreliable."
)
VS_LEGEND = (
    'Each "vs" cell: *paired* = median over rounds of the within-round '
    "speed ratio (min–max over rounds); *medians* = ratio of the median step "
    "times, i.e. of the tokens/s columns. They differ when rounds differ."
)
SHARED_PEER = (
    "On a shared machine PyTorch's OpenMP threads, which wait for each "
    "other at every parallel region, can lose more than TensorFlow's pool "
    "(on the project's 2-core machine under load, tiny-model generation "
    "ran 5× slower with 2 torch threads than with 1), so the ratios "
    "against PyTorch favour the Keras rows; compare them on an unshared "
    "machine."
)
FUSED = (
    ": GPT-2's fused query/key/value projection, so PEFT adapts the key "
    "too, with as many trainable parameters as our query + value"
)
TRAIN_PEERS = {"enable_lora": "vs enable_lora", "peft_lora": "vs PEFT LoRA"}
REMAT = "_remat"  # bench.train.REMAT: a memory row with `--remat`


def _f(x, digits=2):
    return "–" if x is None else f"{x:,.{digits}f}"


def _of_medians(row, other):
    """How many times faster `row` is than `other`, from their medians."""
    return other["median_s"] / row["median_s"]


def _vs(paired, row=None, other=None):
    """A "vs" cell: the paired ratio and the ratio of medians."""
    if not paired:
        return "–"
    text = (
        f"paired {paired['ratio']:.2f}× ({paired['min']:.2f}–"
        f"{paired['max']:.2f})"
    )
    medians = paired.get("of_medians")
    if row is not None and other is not None:
        medians = _of_medians(row, other)
    if medians is not None:
        text += f"; medians {medians:.2f}×"
    return text


def _load_text(run_load):
    """One run's load: the load average before → after and the others'."""
    if not run_load:
        return "load not recorded"
    before = run_load["loadavg_before"][0]
    after = run_load["loadavg_after"][0]
    text = f"load average {before:.2f} → {after:.2f}"
    if run_load.get("others_cores") is not None:
        text += f", other processes {run_load['others_cores']:.2f} cores"
    return text


def machine_label(result, runs=None):
    """The label of a table (`runs`: its runs) or of the whole result."""
    if runs is None:
        runs = _all_runs(result)
    busy, what = load.shared(result.get("load"), [r.get("load") for r in runs])
    if busy:
        return f"**Shared machine** ({what}): ratios are indicative."
    return (
        f"Machine load: {what} (threshold: other processes "
        f"{load.OTHERS_THRESHOLD} cores during a run)."
    )


def _all_runs(result):
    runs = list(result.get("train") or [])
    for mem in result.get("memory") or []:
        runs += list(mem["methods"].values())
    runs += [result[s] for s in ("generate", "serve") if result.get(s)]
    return runs


def _spread(rows):
    """The widest step-time spread of a table, IQR / median."""
    return max(r["iqr_s"] / r["median_s"] for r in rows.values())


def _peak(run, result):
    """The run's matmul peak in GFLOP/s (older results: the bench's)."""
    return run.get("peak_gflops") or result.get("matmul_peak_gflops")


def mfu_problem(run, peak):
    """Why the run's MFU cannot be shown (`None` when it can)."""
    mfus = [r["mfu"] for r in run["methods"].values() if r.get("mfu")]
    if not mfus or max(mfus) <= 1:
        return None
    return MFU_INVALID.format(peak=peak, achieved=max(mfus) * peak)


def _train_header(run, result, peak):
    return [
        f"**{run['shape']}, {run['dtype']}, jit_compile="
        f"{run['jit_compile']}**, batch {run['batch_size']} × "
        f"{run['sequence_length']} tokens, {run['rounds']} interleaved rounds"
        f" × {run['steps_per_round']} steps, N = {run['matmul_params']:,}; "
        f"{run.get('peak_dtype', 'float32')} matmul peak {_f(peak, 1)} "
        f"GFLOP/s; {_gpu_text(run)}{_load_text(run.get('load'))}; "
        f"step spread (IQR / median) up to "
        f"{100 * _spread(run['methods']):.0f} %",
        "",
        machine_label(result, [run]),
        "",
    ]


def _gpu_text(run):
    """The GPU memory a `--gpu` run reached (all its models at once)."""
    if not run.get("gpu"):
        return ""
    mb = run.get("gpu_peak_mb")
    if mb is None:
        return "on the GPU (no GPU memory recorded); "
    return f"on the GPU, peak GPU memory {mb:,.0f} MiB (all models); "


def _train_table(run, result):
    peak = _peak(run, result)
    rows = run["methods"]
    problem = mfu_problem(run, peak)
    peers = [
        p for p in TRAIN_PEERS if any(f"vs_{p}" in r for r in rows.values())
    ]
    head = "| method | trainable params | step median (s) | IQR (s) | tokens/s "
    head += "| vs full | " + "".join(f"{TRAIN_PEERS[p]} | " for p in peers)
    head += "first step (s) | MFU |"
    lines = _train_header(run, result, peak) + [
        head,
        "|---|---:|---:|---:|---:|---|" + "---|" * len(peers) + "---:|---:|",
    ]
    for method, row in rows.items():
        vs = [_vs(row.get("vs_full"), row, rows.get("full"))]
        vs += [_vs(row.get(f"vs_{p}"), row, rows.get(p)) for p in peers]
        mfu = row.get("mfu")
        mfu = "–" if mfu is None or problem else f"{100 * mfu:.1f} %"
        lines.append(
            f"| {method} | {row['trainable_params']:,} | "
            f"{_f(row['median_s'], 3)} | {_f(row['iqr_s'], 3)} | "
            f"{_f(row['tokens_per_s'], 0)} | {' | '.join(vs)} | "
            f"{_f(row['first_step_s'], 1)} | {mfu} |"
        )
    return lines + [""] + _train_notes(run, problem, _shared(result, run))


def _peer_notes(info, shared):
    fused = FUSED if info["targets"] == ["c_attn"] else ""
    same = "" if info["hf_params"] == info["keras_params"] else "NOT "
    tf_threads = info["tf_threads"] or "default (one per core)"
    notes = [
        f"- peft_lora: PyTorch + PEFT LoRA on `transformers` (targets "
        f"{', '.join(info['targets'])}{fused}); base parameters "
        f"{info['hf_params']:,} (transformers) vs {info['keras_params']:,} "
        f"(keras-hub): {same}the same; threads: torch "
        f"{info['torch_threads']}, TensorFlow {tf_threads}."
    ]
    return notes + ([f"- {SHARED_PEER}"] if shared else [])


def _shared(result, run):
    return load.shared(result.get("load"), [run.get("load")])[0]


def _train_notes(run, problem, shared):
    notes = [f"- {note}" for note in run.get("notes", [])]
    if problem:
        notes.append(f"- **{problem}**")
    rows = run["methods"]
    if run.get("peer"):
        notes += _peer_notes(run["peer"], shared)
    if "first_step_vs_peft_lora" in rows.get("lora", {}):
        notes.append(
            f"- First step: lora {rows['lora']['first_step_s']:.2f} s vs "
            f"PEFT LoRA {rows['peft_lora']['first_step_s']:.2f} s "
            f"({rows['lora']['first_step_vs_peft_lora']:.1f}× PyTorch's: "
            "Keras traces the step, and compiles it when jit_compile is on; "
            "PyTorch runs eagerly)."
        )
    if run.get("switch_cost"):
        costs = ", ".join(
            f"{m} {c:.2f}×" for m, c in run["switch_cost"].items()
        )
        notes.append(
            "- First step of a round / later steps (what taking over from "
            f"the previous candidate costs, e.g. idle threads of the other "
            f"framework): {costs}."
        )
    return notes + ([""] if notes else [])


def _memory_tables(result):
    lines = ["## Peak memory (one process per method, 3 steps)", ""]
    for mem in result["memory"]:
        rows = mem["methods"]
        if any(method.endswith(REMAT) for method in rows):
            lines += _remat_table(mem)
            continue
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
    return lines


def _remat_table(mem):
    """LoRA with and without gradient checkpointing (`lora_remat`): peak
    memory and speed, each against the same method without it."""
    rows = mem["methods"]
    lines = [
        f"**{mem['shape']}: gradient checkpointing (`--remat`)**, batch "
        f"{mem.get('batch_size', 4)} × {mem.get('sequence_length', 128)} "
        f"tokens, jit_compile={mem.get('jit_compile', True)}; tokens/s from "
        "the steps after the first",
        "",
        "| method | remat | peak RSS (MiB) | tokens/s | peak RSS vs "
        "without | tokens/s vs without |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for method, row in rows.items():
        remat = method.endswith(REMAT)
        name = method[: -len(REMAT)] if remat else method
        other = rows.get(name) if remat else None
        rss = tokens = "–"
        if other:
            rss = f"{row['peak_rss_mb'] / other['peak_rss_mb']:.2f}×"
            tokens = f"{row['tokens_per_s'] / other['tokens_per_s']:.2f}×"
        lines.append(
            f"| {name} | {'yes' if remat else 'no'} | "
            f"{row['peak_rss_mb']:,.0f} | {_f(row.get('tokens_per_s'), 0)} | "
            f"{rss} | {tokens} |"
        )
    return lines + [""]


def _generate_table(gen, result):
    peer = any("transformers" in b["variants"] for b in gen["batches"])
    lines = [
        "## Generation",
        "",
        f"**{gen['shape']}, {gen.get('dtype', 'float32')}"
        f"{', on the GPU' if gen.get('gpu') else ''}**, greedy, prompt "
        f"{gen['prompt_length']} + "
        f"{gen['new_tokens']} new tokens, jit_compile={gen['jit_compile']}, "
        f"{gen['rounds']} interleaved rounds; {_load_text(gen.get('load'))}",
        "",
        machine_label(result, [gen]),
        "",
        "| batch | variant | new tokens/s | vs base | "
        + ("vs transformers | " if peer else "")
        + "first call (s) |",
        "|---:|---|---:|---|" + ("---|" if peer else "") + "---:|",
    ]
    for batch in gen["batches"]:
        rows = batch["variants"]
        for name, row in rows.items():
            vs = [_vs(row.get("vs_base"), row, rows.get("base"))]
            if peer:
                vs.append(
                    _vs(row.get("vs_transformers"), row, rows["transformers"])
                )
            lines.append(
                f"| {batch['batch_size']} | {name} | "
                f"{_f(row['new_tokens_per_s'], 1)} | {' | '.join(vs)} | "
                f"{_f(row['first_call_s'], 2)} |"
            )
    lines.append("")
    params = gen.get("params", {})
    if "transformers" in params:
        lines += [
            "- transformers: the `transformers` model of the same shape "
            f"(random weights, `generate(do_sample=False)`, KV cache), "
            f"{params['transformers']:,} parameters vs keras-hub's "
            f"{params.get('base', 0):,}.",
        ]
        if _shared(result, gen):
            lines.append(f"- {SHARED_PEER}")
    lines += [f"- {note}" for note in gen.get("notes", [])]
    return lines + [""]


def _serve_table(srv, result):
    lines = [
        "## Serving",
        "",
        f"**{srv['shape']}** + LoRA exported (merged) with "
        f"`export_saved_model(text=False)` in {srv['export_s']:.1f} s; "
        f"batch {srv['batch_size']}, prompt {srv['prompt_length']}, "
        f"{srv['new_tokens']} new tokens; same greedy tokens as Keras: "
        f"{srv['same_tokens']}; {_load_text(srv.get('load'))}",
        "",
        machine_label(result, [srv]),
        "",
        "| call | median (ms) | IQR (ms) | first call (s) | speed vs Keras |",
        "|---|---:|---:|---:|---|",
    ]
    calls = srv["calls"]
    keras = {
        "savedmodel_logits": "keras_predict",
        "savedmodel_generate_ids": "keras_generate",
    }
    for name, row in calls.items():
        other = calls.get(keras.get(name))
        lines.append(
            f"| {name} | {1000 * row['median_s']:,.1f} | "
            f"{1000 * row['iqr_s']:,.1f} | {row['first_call_s']:.2f} | "
            f"{_vs(row.get('vs_keras'), row, other)} |"
        )
    return lines + [""]


def _targets_table(result):
    checks = targets(result)
    if not checks:
        return []
    lines = [
        "## Targets",
        "",
        "| target | paired (median of rounds) | ratio of medians | met |",
        "|---|---:|---:|---|",
    ]
    for name, paired, medians, met in checks:
        lines.append(f"| {name} | {paired:.2f} | {_f(medians)} | {met} |")
    return lines + [""]


def markdown(result):
    m = result["machine"]
    peak = result.get("matmul_peak_gflops")
    peak = (
        f"Measured float32 matmul peak: {peak:.1f} GFLOP/s, before the runs, "
        "in the parent process"
        if peak
        else "The float32 matmul peak is measured inside each training run"
    )
    if m.get("gpus"):
        peak = (
            f"GPU: {', '.join(m['gpus'])}. The matmul peak, in each run's "
            "compute dtype, is measured inside each training run"
        )
    lines = [
        f"# Benchmark ({result['date']})",
        "",
        machine_label(result),
        "",
        f"`{result['command']}` on {m['cpu']}, {m['cores']} cores; "
        f"TensorFlow {m['tensorflow']}, Keras {m['keras']}, keras-hub "
        f"{m['keras_hub']}. {peak} (MFU counts 6N FLOPs per token for full "
        "fine-tuning, 4N for frozen-base methods).",
        "",
        VS_LEGEND,
        "",
    ]
    if result.get("train"):
        lines += ["## Training", ""]
        for run in result["train"]:
            lines += _train_table(run, result)
    if result.get("memory"):
        lines += _memory_tables(result)
    if result.get("generate"):
        lines += _generate_table(result["generate"], result)
    if result.get("serve"):
        lines += _serve_table(result["serve"], result)
    return "\n".join(lines + _targets_table(result))
