"""`python -m bench`: the benchmark suite; writes JSON and a Markdown table.

    python -m bench                 # the full plan (about 40 min, 2 cores)
    python -m bench --quick         # a tiny model, 1-3 min: checks the code
    python -m bench --suites train  # a part of the plan
    python -m bench --gpu           # a GPU, mixed precision (sized for 8 min)

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

`--gpu` runs the training and generation tables on the GPU that
TensorFlow sees (it stops with an error when there is none), under
`--gpu-dtype` (`mixed_bfloat16` by default), with XLA, at batch 16 × 512,
the PyTorch peers on CUDA under bfloat16 autocast; MFU counts against the
bfloat16 matmul peak measured in each run; results go to
`bench/results/gpu.{json,md}`.
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
PEER = "peft_lora"  # PyTorch + PEFT LoRA (bench.peer)
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


def gpu_plan(quick, dtype="mixed_bfloat16"):
    """What `--gpu` runs: training and generation only (peak RSS and the
    CPU serving path say nothing about a GPU), sized to take about 8
    minutes on one GPU (not yet measured: no GPU has been lent)."""
    if quick:  # the code path on a tiny model (CI runs it on the CPU)
        tiny = dict(shape="tiny", dtype=dtype, gpu=True, jit_compile=False)
        return {
            "train": [
                dict(
                    tiny,
                    methods=["full", "lora", "peft_lora"],
                    sequence_length=32,
                    rounds=1,
                    steps=2,
                    peak_sizes=[256],
                )
            ],
            "generate": dict(
                tiny,
                variants=["base", "lora_merged", "transformers"],
                batch_sizes=[1],
                prompt_length=8,
                new_tokens=8,
                rounds=1,
            ),
        }
    run = dict(
        dtype=dtype,
        gpu=True,
        batch_size=16,
        sequence_length=512,
        rounds=5,
        steps=5,
        peak_sizes=[4096, 8192],
    )
    adapters = ["lora", "houlsby", "pfeiffer", "ia3"]
    return {
        "train": [
            dict(run, shape="gpt2_small", methods=["full", *adapters, PEER]),
            dict(run, shape="smollm2_135m", methods=["full", "lora", PEER]),
        ],
        "generate": dict(
            shape="gpt2_small",
            dtype=dtype,
            gpu=True,
            variants=["base", "lora_merged", "transformers"],
            batch_sizes=[1, 16],
            rounds=5,
        ),
    }


def gpu_names():
    """The GPUs TensorFlow sees, by name."""
    return [
        tf.config.experimental.get_device_details(d).get("device_name", d.name)
        for d in tf.config.list_physical_devices("GPU")
    ]


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
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="Run the training and generation tables on the GPU, in mixed "
        "precision (results: gpu.json / gpu.md).",
    )
    parser.add_argument(
        "--gpu-dtype",
        choices=("mixed_bfloat16", "mixed_float16", "float32"),
        default="mixed_bfloat16",
        help="Keras dtype policy of the --gpu runs (the PyTorch peers run "
        "in bfloat16 autocast, so they join mixed_bfloat16 runs only).",
    )
    parser.add_argument("--output", default=os.path.join("bench", "results"))
    parser.add_argument(
        "--name", default=None, help="File stem (default: latest or quick)."
    )
    args = parser.parse_args(argv)
    if args.gpu:
        gpus = gpu_names()
        if not gpus:
            parser.error(
                "--gpu: TensorFlow sees no GPU "
                "(tf.config.list_physical_devices('GPU') is empty). Install "
                "TensorFlow with CUDA (pip install 'tensorflow[and-cuda]') on "
                "a machine with an NVIDIA GPU, or run without --gpu."
            )
        gpu_only = {"train", "generate"}
        if not set(args.suites) & gpu_only:
            parser.error("--gpu runs the train and generate suites only.")
        args.suites = [s for s in args.suites if s in gpu_only]
        steps = gpu_plan(args.quick, args.gpu_dtype)
    else:
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
    if args.gpu:
        result["machine"]["gpus"] = gpus
    os.makedirs(args.output, exist_ok=True)
    default = "quick" if args.quick else "latest"
    if args.gpu:
        default = "gpu_quick" if args.quick else "gpu"
    stem = os.path.join(args.output, args.name or default)

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
