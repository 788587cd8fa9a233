"""Scores finetune runs' saved adapters again, at another evaluation length.

    python docs/main_job_runs/rescore.py OUT.json LENGTH RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a `tf-adapters finetune --output` folder (its `adapter/`
and `report.json`). The run's own options (`report.json`'s `reproduce`)
rebuild its splits; only `eval_sequence_length` is set to LENGTH. The
adapter is loaded onto a fresh base and the validation and test splits
are scored as `finetune` scores them (`stages.evaluate`). OUT.json gets,
per run, the accuracies its report holds and the ones at LENGTH.

Used for the runs trained before evaluation scored whole reviews (see
docs/main_job.md): it gives what `finetune` with today's default would
have printed for the same trained adapter, without training again (the
default's 48-step runs, trained again with it, gave the same numbers).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tf_adapters.pipeline import stages  # noqa: E402
from tf_adapters.pipeline.config import FinetuneConfig  # noqa: E402
from tf_adapters.pipeline.fusion import load_with_fused  # noqa: E402


def load_run(run_dir, **options):
    """`(report, run)`: RUN_DIR's report and its run rebuilt from the
    report's options with `options` changed (splits, a fresh base with
    the saved adapter, the task model compiled), ready to evaluate."""
    with open(os.path.join(run_dir, "report.json")) as f:
        report = json.load(f)
    config = FinetuneConfig.from_dict(
        dict(report["reproduce"]["options"], **options)
    )
    run = stages.Run(config, strategy=None)
    stages.load(run)
    stages.prepare(run)
    load_with_fused(run.model, os.path.join(run_dir, "adapter"))
    stages.build_trainer(run)
    run.trainer.compile(loss=run.task.loss(), jit_compile=config.jit_compile)
    return report, run


def rescore(run_dir, length):
    report, run = load_run(run_dir, eval_sequence_length=length)
    config = run.config
    stages.evaluate(run)
    return {
        "seed": config.seed,
        "steps": config.steps,
        "sequence_length": config.sequence_length,
        "report": {
            "eval_sequence_length": report.get(
                "eval_sequence_length", config.sequence_length
            ),
            "validation": report["validation"]["accuracy"],
            "test": report["adapted"]["accuracy"],
        },
        "rescored": {
            "eval_sequence_length": length,
            "validation": run.validation_metrics["accuracy"],
            "test": run.metrics["accuracy"],
            "test_truncated": run.truncated["test"],
        },
    }


def main(out, length, *runs):
    results = {}
    for run_dir in runs:
        results[os.path.basename(os.path.normpath(run_dir))] = rescore(
            run_dir, int(length)
        )
        print(json.dumps(results, indent=1), flush=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
