"""Calibrates finetune runs' saved adapters as `finetune` now does, and
scores them again.

    python docs/main_job_runs/recalibrate.py OUT.json RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a `tf-adapters finetune --output` folder (its `adapter/`
and `report.json`), from before calibration. The run's own options
(`report.json`'s `reproduce`) rebuild its splits, scored whole
(`eval_sequence_length` 128); the adapter is loaded onto a fresh base,
calibrated by `stages.calibrate` with classification's default 256
examples (the training reviews the run's batches did not hold, as
`finetune` picks them), and the validation and test splits are scored by
`stages.evaluate`. OUT.json gets, per run, the accuracies uncalibrated
(the report's, or those at 128 where the run scored cut) and calibrated,
with the fitted bias.

Training is unchanged by calibration and deterministic across machines,
so this gives what `finetune` with today's defaults prints for the same
options (checked: seeds 0 and 5 of the default, trained again by
`finetune`, gave the same accuracies and biases).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# rescore.py sits beside this script (`python docs/main_job_runs/...`
# puts this folder first on the path).
from rescore import load_run  # noqa: E402

from tf_adapters.pipeline import stages  # noqa: E402


def recalibrate(run_dir):
    _, run = load_run(run_dir, eval_sequence_length=128, calibration_size=256)
    config = run.config
    stages.evaluate(run)
    before = {
        "validation": run.validation_metrics["accuracy"],
        "test": run.metrics["accuracy"],
    }
    stages.calibrate(run)
    stages.evaluate(run)
    return {
        "seed": config.seed,
        "steps": config.steps,
        "uncalibrated": before,
        "calibrated": {
            "validation": run.validation_metrics["accuracy"],
            "test": run.metrics["accuracy"],
            "test_confusion_matrix": run.metrics["confusion_matrix"],
        },
        "calibration": run.calibration,
    }


def main(out, *runs):
    results = {}
    for run_dir in runs:
        name = os.path.basename(os.path.normpath(run_dir))
        results[name] = recalibrate(run_dir)
        print(name, json.dumps(results[name]), flush=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
