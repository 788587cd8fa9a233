"""IA3 step time on the built-in QA task, with the scaling as before
(an einsum with no summed axis) or as now (scale_along's multiply).

    python docs/ia3_scaling_ab.py einsum|multiply OUT

Run both back to back and compare `step_seconds_median` in each
OUT/report.json (2026-12-03, 2-core Xeon, alone: 17.03 s einsum, 5.24 s
multiply; same final loss, perplexity and token F1).
"""

import sys

from keras import ops

import tf_adapters.methods.ia3.ia3_layer as ia3_layer


def einsum_scale(tensor, subscripts, scale, scaled):
    return ops.einsum(f"{subscripts},{scaled}->{subscripts}", tensor, scale)


if sys.argv[1] == "einsum":
    ia3_layer.scale_along = einsum_scale
from tf_adapters.cli.main import main  # noqa: E402

sys.exit(
    main(
        [
            "finetune",
            "--task",
            "prompt_response",
            "--data",
            "qa",
            "--method",
            "ia3",
            "--steps",
            "8",
            "--test-size",
            "16",
            "--no-evaluate-base",
            "--no-export",
            "--output",
            sys.argv[2],
        ]
    )
)
