"""`python -m bench`: the benchmark suite; writes JSON and a Markdown table.

    python -m bench                 # the full plan (about 40 min, 2 cores)
    python -m bench --quick         # a tiny model, 1-3 min: checks the code
    python -m bench --suites train  # a part of the plan

Results go to `bench/results/` (`--output`). Every ratio is measured in one
process from interleaved rounds (A, B, C, A, B, C ...), and so are the
PyTorch peers': the float32 training runs include `peft_lora` (PyTorch +
PEFT LoRA on the `transformers` model of the same shape, random weights:
same rank, alpha and query/value targets; GPT-2 fuses them with the key
in `c_attn`, which PEFT adapts whole) and generation a `transformers` row
(`generate(do_sample=False)`, KV cache). Each "vs" column gives the median
of per-round ratios (min-max) and the ratio of medians (= the ratio of the
tokens/s columns). The matmul peak behind MFU is measured inside each
training run; an MFU above 100 % is not printed. The load average and
other processes' CPU use are recorded around every run; a run that shared
the machine is labelled so.
"""

import argparse
import datetime
import json
import os
import platform
import sys

import keras
import keras_hub
import tensorflow as tf

from bench import load
from bench import train
from bench.report import markdown
from bench.timing import run_child
from tf_adapters.core.atomic import atomic_write_text

SUITES = ("train", "memory", "generate", "serve")
# LoRA with and without gradient checkpointing (`finetune --remat`) at
# sequence length 1,024, XLA on as in `finetune`; batch 1 keeps the run
# without it within a few GB on GPT-2 small.
REMAT_RUN = dict(
    sequence_length=1024,
    batch_size=1,
    methods=["lora", "lora" + train.REMAT],
)


def plan(quick):
    """What runs: training runs, memory runs, generation, serving (each
    in its own process)."""
    if quick:
        small = dict(
            shape="tiny",
            sequence_length=32,
            rounds=2,
            steps=2,
            peak_sizes=[256, 512],
        )
        return {
            "train": [
                dict(small, methods=list(train.METHODS), jit_compile=False),
                dict(
                    small,
                    methods=["full", "lora", "enable_lora"],
                    dtype="mixed_bfloat16",
                    jit_compile=False,
                ),
            ],
            "memory": [
                dict(
                    shape="tiny",
                    sequence_length=32,
                    jit_compile=False,
                    methods=["full", "lora"],
                ),
                dict(
                    REMAT_RUN,
                    shape="tiny",
                    sequence_length=256,
                    jit_compile=False,
                ),
            ],
            "generate": dict(
                shape="tiny",
                prompt_length=8,
                new_tokens=8,
                rounds=2,
                jit_compile=False,
            ),
            "serve": dict(
                shape="tiny",
                prompt_length=8,
                new_tokens=8,
                rounds=2,
                jit_compile=False,
            ),
        }
    trio = ["full", "lora", "enable_lora"]
    peer = trio + ["peft_lora"]  # the PyTorch peer: float32 runs only
    return {
        "train": [
            dict(shape="gpt2_small", methods=list(train.METHODS)),
            dict(shape="gpt2_small", methods=peer, jit_compile=False),
            dict(shape="gpt2_small", methods=trio, dtype="mixed_bfloat16"),
            dict(shape="smollm2_135m", methods=peer),
        ],
        "memory": [
            dict(shape="gpt2_small", methods=trio + ["pfeiffer", "ia3"]),
            dict(REMAT_RUN, shape="gpt2_small"),
        ],
        "generate": dict(shape="gpt2_small"),
        "serve": dict(shape="gpt2_small"),
    }


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [x.split(":", 1)[1].strip() for x in f if "model name" in x]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.version(),
        "keras_hub": keras_hub.__version__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Tiny model, few rounds: checks the code only (peers included).",
    )
    parser.add_argument(
        "--suites",
        nargs="+",
        choices=SUITES,
        default=list(SUITES),
        help="train: step times (Keras rows and the PEFT LoRA peer); "
        "memory: peak RSS, one process per method; generate: greedy "
        "decoding (keras-hub rows and the transformers peer); serve: the "
        "exported SavedModel vs Keras.",
    )
    parser.add_argument(
        "--train-runs",
        type=int,
        default=None,
        help="Only the first K training runs of the plan (the first is "
        "the one the targets are about).",
    )
    parser.add_argument("--output", default=os.path.join("bench", "results"))
    parser.add_argument(
        "--name", default=None, help="File stem (default: latest or quick)."
    )
    args = parser.parse_args(argv)
    steps = plan(args.quick)
    steps["train"] = steps["train"][: args.train_runs]
    start = load.snapshot()
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "command": "python -m bench "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
    }
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(
        args.output, args.name or ("quick" if args.quick else "latest")
    )

    def save():
        # After every run, so an interrupted bench keeps what it measured.
        result["load"] = load.during(start, load.snapshot())
        atomic_write_text(stem + ".json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(stem + ".md", markdown(result))

    def child(suite, kwargs):
        print(f"{suite}: {kwargs}", flush=True)
        return run_child("bench.child", [suite, json.dumps(kwargs)])

    if "train" in args.suites:
        result["train"] = []
        for run in steps["train"]:
            result["train"].append(child("train", run))
            save()
    if "memory" in args.suites:
        result["memory"] = []
        for run in steps["memory"]:
            run = dict(run)
            methods = run.pop("methods")
            rows = {m: child("memory", dict(run, method=m)) for m in methods}
            result["memory"].append({**run, "methods": rows})
            save()
    for suite in ("generate", "serve"):
        if suite in args.suites:
            result[suite] = child(suite, steps[suite])
            save()
    print(markdown(result))
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
