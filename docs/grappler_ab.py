"""First-step A/B of TensorFlow's graph optimizer (grappler), for
docs/performance.md ("Where the first step goes").

    python docs/grappler_ab.py MODE OUT [finetune options]

MODE `on` leaves grappler as it is, `off` turns its meta optimizer off,
`lean` keeps the remapper (oneDNN fusions) and function inlining but turns
the other passes off. Runs a 6-step main job (48 test reviews, no base
evaluation, no export) into OUT; the first step and the step median are in
OUT/report.json. Each mode needs its own process: the options apply when a
function is first instantiated. For grappler's own timing of each pass:

    TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_VMODULE=meta_optimizer=1 \\
        python docs/grappler_ab.py on OUT 2> grappler.log
"""

import sys

import tensorflow as tf

MODES = {
    "on": {},
    "off": {"disable_meta_optimizer": True},
    "lean": {
        "arithmetic_optimization": False,
        "constant_folding": False,
        "dependency_optimization": False,
        "layout_optimizer": False,
        "shape_optimization": False,
        "loop_optimization": False,
        "debug_stripper": False,
        "disable_model_pruning": True,
    },
}

if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    tf.config.optimizer.set_experimental_options(MODES[mode])
    from tf_adapters.cli.main import main

    argv = [
        "finetune",
        "--steps",
        "6",
        "--test-size",
        "48",
        "--no-evaluate-base",
        "--no-export",
        "--output",
        out,
        *sys.argv[3:],
    ]
    sys.exit(main(argv))
