"""Interleaved A/B of the main job's export (docs/performance.md, "The
export traced the model six times"): before (`serving_default` a second
endpoint, Keras's default save signatures traced) and after.

    python docs/export_trace_ab.py ROUNDS

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


times = {"old": [], "new": []}
for rnd in range(int(sys.argv[1])):
    arms = [("old", old_export), ("new", new_export)]
    for name, fn in arms[::-1] if rnd % 2 else arms:
        out = tempfile.mkdtemp(dir=".")
        t = time.perf_counter()
        fn(out)
        times[name].append(round(time.perf_counter() - t, 1))
        shutil.rmtree(out)
        print(name, times[name][-1], flush=True)
print(json.dumps(times))
