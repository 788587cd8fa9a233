"""A tiny fine-tuning job for tests that run `finetune` end to end: 12
LoRA steps on a tiny GPT-2 preset, checkpoints every 3 steps; and a script
that runs it until a signal comes."""

import json
import os
import time

import numpy as np
import pytest


def write_data(folder):
    """40 labelled texts as `folder/d.jsonl`; returns the path."""
    words = [" airplane", " at", " airport", " the", " plane"]
    rows = [
        {
            "text": "".join(words[(i * 3 + j) % 5] for j in range(5)) + f" {i}",
            "label": "air" if i % 2 else "plane",
        }
        for i in range(40)
    ]
    path = os.path.join(folder, "d.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    return path


def options(folder, preset, output, **overrides):
    """`FinetuneConfig` options of the job, writing to `folder/output`."""
    found = dict(
        model=preset,
        data=write_data(folder),
        labels=["air", "plane"],
        template="{text} is",
        steps=12,
        checkpoint_every=3,
        batch_size=4,
        sequence_length=12,
        test_size=6,
        jit_compile=False,
        export=False,
        evaluate_base=False,
        output=os.path.join(folder, output),
    )
    found.update(overrides)
    return found


def adapter_weights(path):
    """`{name: array}` of the adapter checkpoint in folder `path`."""
    with np.load(os.path.join(path, "adapter_weights.npz")) as f:
        return {k: f[k] for k in f.files}


# Runs `tf-adapters finetune`; after step `argv[1]` it touches the marker
# file `argv[2]` and waits there (the step is done, the next not begun)
# until a signal arrives, so the test's SIGTERM lands mid-epoch.
WAIT_FOR_SIGNAL = """
import sys, time
from tf_adapters.cli.main import main
from tf_adapters.pipeline import stages
from tf_adapters.training import preemption

received = []
handle = preemption.StopOnSignal._handle

def recording_handle(self, signum, frame):
    received.append(signum)
    handle(self, signum, frame)

end = stages.StepTimer.on_train_batch_end

def waiting_end(self, batch, logs=None):
    end(self, batch, logs)
    if len(self.times) == int(sys.argv[1]):
        open(sys.argv[2], "w").close()
        deadline = time.monotonic() + 300
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)

preemption.StopOnSignal._handle = recording_handle
stages.StepTimer.on_train_batch_end = waiting_end
sys.exit(main(["finetune", "--config", sys.argv[3]]))
"""


def wait_for_file(path, process, timeout=300):
    """Waits until `path` exists; fails the test if `process` ends first."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"no marker {path}: {err[-3000:]}")
        time.sleep(0.05)
