"""`python -m bench`: the benchmark suite; writes JSON and a Markdown table.

    python -m bench                 # the full plan (about 30 min, 2 cores)
    python -m bench --quick         # a tiny model, a minute: checks the code
    python -m bench --suites train  # a part of the plan

Results go to `bench/results/` (`--output`). Every ratio is measured in one
process from interleaved rounds (A, B, C, A, B, C ...).
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

from bench import train
from bench.report import markdown
from bench.timing import matmul_peak_flops
from bench.timing import run_child
from tf_adapters.core.atomic import atomic_write_text

SUITES = ("train", "memory", "generate", "serve")


def plan(quick):
    """What runs: training runs, memory runs, generation, serving (each
    in its own process)."""
    if quick:
        small = dict(shape="tiny", sequence_length=32, rounds=2, steps=2)
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
    return {
        "train": [
            dict(shape="gpt2_small", methods=list(train.METHODS)),
            dict(shape="gpt2_small", methods=trio, jit_compile=False),
            dict(shape="gpt2_small", methods=trio, dtype="mixed_bfloat16"),
            dict(shape="smollm2_135m", methods=trio),
        ],
        "memory": [
            dict(shape="gpt2_small", methods=trio + ["pfeiffer", "ia3"]),
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
        help="Tiny model, few rounds: checks the code only.",
    )
    parser.add_argument(
        "--suites", nargs="+", choices=SUITES, default=list(SUITES)
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
    peak = matmul_peak_flops((256, 512) if args.quick else (1024, 2048, 4096))
    print(f"float32 matmul peak: {peak / 1e9:.1f} GFLOP/s", flush=True)
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "command": "python -m bench "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "matmul_peak_gflops": peak / 1e9,
    }
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(
        args.output, args.name or ("quick" if args.quick else "latest")
    )

    def save():
        # After every run, so an interrupted bench keeps what it measured.
        atomic_write_text(stem + ".json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(stem + ".md", markdown(result))

    def child(suite, kwargs):
        print(f"{suite}: {kwargs}", flush=True)
        return run_child("bench.child", [suite, json.dumps(kwargs)])

    if "train" in args.suites:
        result["train"] = []
        for run in steps["train"]:
            result["train"].append(child("train", dict(run, peak_flops=peak)))
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
