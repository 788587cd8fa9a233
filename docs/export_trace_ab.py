"""Interleaved A/B of the main job's export (docs/performance.md, "The
export traced the model six times").

    python docs/export_trace_ab.py ROUNDS [PAIR]

PAIR `six` (the default): before (`serving_default` a second endpoint,
Keras's default save signatures traced) and after (the code now).
PAIR `save_context`: the endpoints' first trace outside a save context
(`tf.saved_model.save` traced them again) and inside it (the code now).

Loads the embedded model with the main job's LoRA adapter once, then per
round exports it both ways (the order alternates) into a temporary
folder under the current one, and prints the seconds.
"""

import contextlib
import json
import shutil
import sys
import tempfile
import time

import tf_adapters.compat.export as cexport
from tf_adapters.export import saved_model as sm
from tf_adapters.pipeline import stages
from tf_adapters.pipeline.config import FinetuneConfig

config = FinetuneConfig.from_dict({"export": False, "steps": 1})
run = stages.Run(config, None)
stages.load(run)
stages.prepare(run)
stages.build_trainer(run)
stages.adapt(run)
model = run.task.export_model(run.trainer, run.model)
new_ctx = cexport._no_default_save_signature
endpoints_of = sm._classifier_endpoints


def old_export(out):
    # The code before: no context, and serving_default added as a second
    # endpoint (traced again).
    cexport._no_default_save_signature = contextlib.nullcontext
    try:
        archive = cexport.new_export_archive()
        archive.track(model)
        endpoints = endpoints_of(model)
        for name, (fn, sig) in endpoints.items():
            archive.add_endpoint(name, fn, input_signature=sig)
        fn, sig = endpoints["classify"]
        archive.add_endpoint("serving_default", fn, input_signature=sig)
        return sm.write_versioned(archive, out, "m")
    finally:
        cexport._no_default_save_signature = new_ctx


def new_export(out):
    return sm.export_saved_model(model, out, "m", merge=False)


def traced_twice(out):
    # The code before the save-context change: `ExportArchive`'s first
    # trace outside the save context.
    when_saving = cexport._as_when_saving
    cexport._as_when_saving = contextlib.nullcontext
    try:
        return new_export(out)
    finally:
        cexport._as_when_saving = when_saving


PAIRS = {
    "six": [("old", old_export), ("new", new_export)],
    "save_context": [("two_traces", traced_twice), ("one_trace", new_export)],
}
arms = PAIRS[sys.argv[2] if len(sys.argv) > 2 else "six"]
times = {name: [] for name, _ in arms}
for rnd in range(int(sys.argv[1])):
    for name, fn in arms[::-1] if rnd % 2 else arms:
        out = tempfile.mkdtemp(dir=".")
        t = time.perf_counter()
        fn(out)
        times[name].append(round(time.perf_counter() - t, 1))
        shutil.rmtree(out)
        print(name, times[name][-1], flush=True)
print(json.dumps(times))
