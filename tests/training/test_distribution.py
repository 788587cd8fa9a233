"""Fine-tuning under tf.distribute: MirroredStrategy over two logical
CPUs."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tf_adapters.training.distribution import is_chief
from tf_adapters.training.distribution import make_strategy

SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, sys.argv[2])
import keras, keras_hub, tiny_models
from tf_adapters.training.finetune import run_finetune
from tf_adapters.training.finetune_config import FinetuneConfig

tmp = sys.argv[1]
# A tiny GPT-2 without dropout: replicas would otherwise draw different
# dropout masks than one device, and the curves could not match.
lm = tiny_models.gpt2_causal_lm()
config = lm.backbone.get_config()
config["dropout"] = 0.0
keras.utils.set_random_seed(0)
backbone = keras_hub.models.GPT2Backbone.from_config(config)
lm = keras_hub.models.GPT2CausalLM(backbone, lm.preprocessor)
lm.save_to_preset(tmp + "/preset")
base = {v.path.split("/", 1)[-1]: np.array(v) for v in lm.backbone.weights}

words = [" airplane", " at", " airport", " the", " plane"]
rows = [{"text": "".join(words[(i * 3 + j) % 5] for j in range(5)) + f" {i}",
         "label": "air" if i % 2 else "plane"} for i in range(40)]
open(tmp + "/d.jsonl", "w").write("\\n".join(json.dumps(r) for r in rows))
out = {}
for strategy in ("default", "mirrored"):
    report = run_finetune(FinetuneConfig(
        model=tmp + "/preset", data=tmp + "/d.jsonl", labels=["air", "plane"],
        template="{text} is", steps=8, batch_size=8, sequence_length=12,
        test_size=6, jit_compile=False, export=False, evaluate_base=False,
        learning_rate=0.01, strategy=strategy,
        output=f"{tmp}/{strategy}"))
    out[strategy] = {k: report[k] for k in ("loss_curve", "replicas")}
    out[strategy]["accuracy"] = report["adapted"]["accuracy"]
print("RESULT " + json.dumps(out))
"""


def test_mirrored_over_two_cpus_trains_like_one_device(tmp_path):
    import tiny_models

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SCRIPT),
            str(tmp_path),
            os.path.dirname(tiny_models.__file__),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line[-1][len("RESULT ") :])
    one, two = result["default"], result["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert len(one["loss_curve"]) == len(two["loss_curve"]) == 8
    # Same global batch, seed, initial weights and batch order (checked
    # separately): the curves agree to 0.02 here, not to float rounding
    # yet; issue 8 tracks making them match exactly.
    for a, b in zip(one["loss_curve"], two["loss_curve"], strict=True):
        assert b == pytest.approx(a, abs=0.02)


def test_strategy_names_and_chief():
    assert make_strategy("default").num_replicas_in_sync == 1
    assert is_chief(make_strategy("default"))
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        make_strategy("horovod")
    os.environ.pop("TF_CONFIG", None)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        make_strategy("multi_worker")
