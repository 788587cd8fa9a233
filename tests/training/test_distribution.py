"""Fine-tuning under tf.distribute: one device, MirroredStrategy over two
logical CPUs, and MultiWorkerMirroredStrategy with two worker processes on
loopback. The same global batches, seed and initial weights must give the
same loss curve and the same adapter weights everywhere."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tf_adapters.core.locking import LOCK_FILE
from tf_adapters.training.distribution import is_chief
from tf_adapters.training.distribution import make_strategy

# Shared by every run: 8 steps of LoRA on a tiny GPT-2 without dropout
# (replicas would draw other dropout masks than one device), training
# state saved after step 4.
COMMON = """
import json, os, sys
import numpy as np

tmp = sys.argv[1]
sys.path.insert(0, sys.argv[2])


def config(strategy, output, **kwargs):
    from tf_adapters.pipeline.config import FinetuneConfig

    return FinetuneConfig(
        model=tmp + "/preset", data=tmp + "/d.jsonl", labels=["air", "plane"],
        template="{text} is", steps=8, checkpoint_every=4, batch_size=8,
        sequence_length=12, test_size=6, jit_compile=False, export=False,
        evaluate_base=False, learning_rate=0.01, strategy=strategy,
        output=output, **kwargs)
"""

ONE_PROCESS = """
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras, keras_hub, tiny_models
import tf_adapters
from tf_adapters.pipeline.finetune import run_finetune

lm = tiny_models.gpt2_causal_lm()
backbone_config = lm.backbone.get_config()
backbone_config["dropout"] = 0.0
keras.utils.set_random_seed(0)
backbone = keras_hub.models.GPT2Backbone.from_config(backbone_config)
lm = keras_hub.models.GPT2CausalLM(backbone, lm.preprocessor)
lm.save_to_preset(tmp + "/preset")
base = {v.path: np.array(v) for v in lm.backbone.weights}

words = [" airplane", " at", " airport", " the", " plane"]
rows = [{"text": "".join(words[(i * 3 + j) % 5] for j in range(5)) + f" {i}",
         "label": "air" if i % 2 else "plane"} for i in range(40)]
open(tmp + "/d.jsonl", "w").write("\\n".join(json.dumps(r) for r in rows))

# How far the base weights moved, measured when the adapter is saved.
moved = {}
from tf_adapters.pipeline import stages
save = stages.save_adapter
def save_and_measure(model, path, *args, **kwargs):
    now = {v.path: np.array(v) for v in model.backbone.weights}
    moved["base"] = max(float(np.max(np.abs(now[k] - base[k]))) for k in base)
    return save(model, path, *args, **kwargs)
stages.save_adapter = save_and_measure

out = {}
for strategy in ("default", "mirrored"):
    report = run_finetune(config(strategy, f"{tmp}/{strategy}"))
    out[strategy] = {k: report[k] for k in ("loss_curve", "replicas")}
    out[strategy]["base_moved"] = moved.pop("base")
print("RESULT " + json.dumps(out))
"""

WORKER = """
import json, os
index, ports, phase = int(sys.argv[3]), sys.argv[4].split(","), sys.argv[5]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
    "task": {"type": "worker", "index": index}})

import shutil
import tf_adapters
from tf_adapters.pipeline import finetune
from tf_adapters.pipeline import stages

if phase == "interrupt":
    # Both workers stop dead after step 6 (as if the job were preempted);
    # the chief saved the training state after step 4.
    end = stages.StepTimer.on_train_batch_end
    def stop_after_six(self, batch, logs=None):
        end(self, batch, logs)
        if len(self.times) == 6:
            os._exit(17)
    stages.StepTimer.on_train_batch_end = stop_after_six
else:
    # Keep a copy of what each worker trained (a worker's own outputs go to
    # a scratch directory that is deleted).
    save = stages.save_adapter
    def save_and_copy(model, path, *args, **kwargs):
        result = save(model, path, *args, **kwargs)
        shutil.copytree(path, f"{tmp}/worker{index}_adapter")
        return result
    stages.save_adapter = save_and_copy

report = finetune.run_finetune(config(
    "multi_worker", f"{tmp}/multi_worker", resume=phase == "resume"))
print("RESULT " + json.dumps(report))
"""


def _script(body):
    return textwrap.dedent(COMMON) + textwrap.dedent(body)


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    return env


def _result(stdout):
    line = [x for x in stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line[-1][len("RESULT ") :])


def _adapter(path):
    with np.load(os.path.join(path, "adapter_weights.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The default and mirrored runs, and the files they share."""
    import tiny_models

    tmp = tmp_path_factory.mktemp("distribution")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _script(ONE_PROCESS),
            str(tmp),
            os.path.dirname(tiny_models.__file__),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, _result(done.stdout)


def test_mirrored_over_two_cpus_trains_like_one_device(one_process):
    tmp, result = one_process
    one, two = result["default"], result["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert len(one["loss_curve"]) == len(two["loss_curve"]) == 8
    # Same global batches, seed and initial weights: the curves agree to
    # float rounding (the batch is split 4 + 4 and the gradients summed).
    np.testing.assert_allclose(two["loss_curve"], one["loss_curve"], atol=1e-5)
    a, b = _adapter(tmp / "default/adapter"), _adapter(tmp / "mirrored/adapter")
    assert a.keys() == b.keys() and a
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=1e-5)
    # Only adapter weights change.
    assert one["base_moved"] == two["base_moved"] == 0.0


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ",".join(map(str, ports))


def _two_workers(tmp, phase):
    import tiny_models

    ports = _free_ports(2)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _script(WORKER),
                str(tmp),
                os.path.dirname(tiny_models.__file__),
                str(index),
                ports,
                phase,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for index in range(2)
    ]
    try:
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        for w in workers:
            w.kill()
    return [
        (w.returncode, out, err)
        for w, (out, err) in zip(workers, outputs, strict=True)
    ]


def test_multi_worker_on_loopback_resumes_and_matches_one_device(
    one_process,
):
    tmp, result = one_process
    run = tmp / "multi_worker"

    # Preempted after step 6: only the chief wrote, and only the state
    # after step 4. Keras may start a worker's step 7 before its step-6
    # callbacks run, so a worker can lose its peer in step 7's collective
    # first (a preempted job's other worker fails the same way).
    outcomes = _two_workers(tmp, "interrupt")
    assert 17 in [code for code, _, _ in outcomes], outcomes
    for code, _, err in outcomes:
        assert code == 17 or "UnavailableError" in err, err[-3000:]
    state = json.loads((run / "train_state/state.json").read_text())
    assert state["steps_done"] == 4
    # The lock the chief held is left (it died); the resume takes it over.
    assert sorted(os.listdir(run)) == [LOCK_FILE, "train_state"]

    # Resumed on both workers from the chief's state.
    finished = _two_workers(tmp, "resume")
    for code, _, err in finished:
        assert code == 0, err[-3000:]
    reports = [_result(out) for _, out, _ in finished]
    for report in reports:
        assert report["replicas"] == 2
        assert report["resumed_from_step"] == 4
        assert report["steps_run_here"] == 4
        # Steps 5-8 follow the one-device curve.
        np.testing.assert_allclose(
            report["loss_curve"],
            result["default"]["loss_curve"][4:],
            atol=1e-5,
        )
    # Both workers end with the same adapter, equal to the one-device one.
    one_device = _adapter(tmp / "default/adapter")
    for index in range(2):
        trained = _adapter(tmp / f"worker{index}_adapter")
        assert trained.keys() == one_device.keys()
        for key in trained:
            np.testing.assert_allclose(trained[key], one_device[key], atol=1e-5)
    # Only the chief wrote the user's outputs.
    assert sorted(os.listdir(run)) == ["adapter", "report.json"]


def test_strategy_names_and_chief():
    assert make_strategy("default").num_replicas_in_sync == 1
    assert is_chief(make_strategy("default"))
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        make_strategy("horovod")
    os.environ.pop("TF_CONFIG", None)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        make_strategy("multi_worker")
