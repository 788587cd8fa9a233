"""Prints the fuzzing table of issue 20: per reader, the mutated inputs and
their outcomes, the slowest case, and the peak memory of the files whose
headers claim terabytes.

Run from the repository root:

    python -m tests.fuzz.report            # 10,000 inputs per reader
    python -m tests.fuzz.report --cases 500 --seed 3

"other" counts undocumented outcomes and must be 0.
"""

import argparse
import os
import sys
import tempfile
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Reader rows → the oversized files of their format.
FORMATS = {
    "adapter checkpoint": "npz",
    "training state": "npz",
    "keras-hub .lora.h5": "lora_h5",
    "PEFT folder": "safetensors",
    "HF safetensors": "safetensors",
    "GGUF": "gguf",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sys.path.insert(0, TESTS)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fuzz import harness
    from fuzz import oversized
    from fuzz import targets

    count = args.cases or harness.CASES
    with tempfile.TemporaryDirectory() as folder:
        memory = oversized.probe(oversized.write_cases(folder))
    peaks = {}
    for row in memory[:-1]:
        peaks[row["reader"]] = max(
            peaks.get(row["reader"], 0), row["rss_growth_mb"]
        )
    print(harness.HEADER + f"{'oversized peak MB':>19}{'seconds':>9}")
    total = 0.0
    for name, target in targets.TARGETS.items():
        start = time.perf_counter()
        outcome = harness.run(target, count, args.seed)
        seconds = time.perf_counter() - start
        total += seconds
        peak = peaks.get(FORMATS.get(name), "-")
        print(harness.row(outcome) + f"{peak:>19}{seconds:>9.1f}")
    print(f"total {total:.1f} s")
    print(
        "refused: a documented error naming the file: a ValueError (a newer "
        "format\nversion, an unsupported method or option, adapter weights "
        "that are not\nfinite floats, weights of another shape), a "
        "FileNotFoundError for a shard\nthe index names, or for option "
        "files FinetuneConfig's refusal of a value.\nother: anything else, "
        "or an error not naming the file, or a case over "
        f"{harness.CASE_LIMIT_S:g} s."
    )
    print("\noversized headers (fresh process, peak resident memory growth):")
    for row in memory:
        print(
            f"  {row['reader']:<12}{row['claim']:<30}{row['outcome']:<18}"
            f"{row['rss_growth_mb']:>7.1f} MB{row['seconds']:>9.4f} s"
        )


if __name__ == "__main__":
    main()
