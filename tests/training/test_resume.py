"""A run killed mid-epoch (SIGKILL) resumes to the same weights; so does a
run stopped by SIGTERM, which saves its state after a whole step and exits
with status 75 (meanwhile a second run in its output folder is refused); a
NaN loss stops training and keeps the last good checkpoint; a kill during a
save leaves the previous checkpoint."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import finetune_runs
import numpy as np
import pytest

import tf_adapters as tfa
from tf_adapters.cli.main import EXIT_INTERRUPTED
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.pipeline.finetune import run_finetune
from tf_adapters.training.checkpointing import NonFiniteLoss


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_preset):
    """The adapter the job ends with when nothing stops it."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    options = finetune_runs.options(folder, tiny_preset, "whole")
    report = run_finetune(FinetuneConfig(**options))
    return finetune_runs.adapter_weights(report["checkpoint"])


def _assert_same_adapter(report, expected):
    got = finetune_runs.adapter_weights(report["checkpoint"])
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)


KILLER = """
import json, os, signal, sys
from tf_adapters.pipeline import finetune
from tf_adapters.pipeline import stages
from tf_adapters.pipeline.finetune import run_finetune
from tf_adapters.pipeline.config import FinetuneConfig

seen = []
end = stages.StepTimer.on_train_batch_end

def killing_end(self, batch, logs=None):
    end(self, batch, logs)
    seen.append(batch)
    if len(seen) == int(sys.argv[2]):  # mid-epoch: no checkpoint here
        os.kill(os.getpid(), signal.SIGKILL)

stages.StepTimer.on_train_batch_end = killing_end
run_finetune(FinetuneConfig(**json.loads(open(sys.argv[1]).read())))
"""


def test_killed_run_resumes_to_the_uninterrupted_weights(
    tmp_path, tiny_preset, uninterrupted
):
    options = finetune_runs.options(tmp_path, tiny_preset, "killed")
    (tmp_path / "options.json").write_text(json.dumps(options))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(KILLER),
            str(tmp_path / "options.json"),
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    state = json.loads(
        (tmp_path / "killed" / "train_state" / "state.json").read_text()
    )
    assert state["steps_done"] == 6  # the epoch of steps 7-9 was cut
    assert not (tmp_path / "killed" / "adapter").exists()

    resumed = run_finetune(FinetuneConfig(**options, resume=True))
    assert resumed["resumed_from_step"] == 6
    assert resumed["steps_run_here"] == 6  # steps 1-6 are not repeated
    _assert_same_adapter(resumed, uninterrupted)
    assert not (tmp_path / "killed" / "train_state").exists()


def test_sigterm_saves_the_state_and_resume_ends_with_the_same_adapter(
    tmp_path, tiny_preset, request
):
    options = finetune_runs.options(tmp_path, tiny_preset, "stopped")
    (tmp_path / "options.json").write_text(json.dumps(options))
    marker = tmp_path / "after_step_8"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            finetune_runs.WAIT_FOR_SIGNAL,
            "8",  # steps 7-9 are one epoch: the signal comes mid-epoch
            str(marker),
            str(tmp_path / "options.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    try:
        # While the other process starts (if no test has run it yet).
        expected = request.getfixturevalue("uninterrupted")
        finetune_runs.wait_for_file(marker, process)

        # A second run in the same output folder is refused at once.
        with pytest.raises(FileExistsError, match="in use by another run") as e:
            run_finetune(FinetuneConfig(**options))
        assert f"pid {process.pid} " in str(e.value)

        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "training stopped after step 8 of 12" in err
    assert "--resume" in err
    stopped = tmp_path / "stopped"
    state = json.loads((stopped / "train_state" / "state.json").read_text())
    assert state["steps_done"] == 8
    assert sorted(os.listdir(stopped)) == ["train_state"]  # lock released

    resumed = run_finetune(FinetuneConfig(**options, resume=True))
    assert resumed["resumed_from_step"] == 8
    assert resumed["steps_run_here"] == 4
    _assert_same_adapter(resumed, expected)


def test_resume_refuses_other_options_and_missing_state(tmp_path, tiny_preset):
    options = finetune_runs.options(tmp_path, tiny_preset, "run", resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run_finetune(FinetuneConfig(**options))
    from tf_adapters.training import checkpointing

    config = FinetuneConfig(**options)
    state = tmp_path / "run" / "train_state"
    # A state saved by a run with another learning rate.
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    other = FinetuneConfig(**{**options, "learning_rate": 0.5})
    checkpointing.save_train_state(model, str(state), 1, 3, other)
    with pytest.raises(ValueError, match=r"\['learning_rate'\] differ"):
        checkpointing.load_train_state(model, str(state), config)
    # The method's default rate, given or left unset, is the same run.
    rate = config.effective_learning_rate()
    given = FinetuneConfig(**{**options, "learning_rate": rate})
    checkpointing.save_train_state(model, str(state), 1, 3, given)
    assert checkpointing.load_train_state(model, str(state), config)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path, tiny_preset
):
    options = finetune_runs.options(
        tmp_path, tiny_preset, "nan", learning_rate=1e38, checkpoint_every=1
    )
    with pytest.raises(NonFiniteLoss) as error:
        run_finetune(FinetuneConfig(**options))
    found = re.search(r"became (nan|inf|-inf) at step (\d+)", str(error.value))
    assert found, str(error.value)
    step = int(found.group(2))
    state = tmp_path / "nan" / "train_state"
    if step > 1:  # every step before the bad one was saved, all finite
        meta = json.loads((state / "state.json").read_text())
        assert meta["steps_done"] == step - 1
        assert f"after step {step - 1}" in str(error.value)
        with np.load(state / "state.npz") as f:
            assert all(np.all(np.isfinite(f[k])) for k in f.files)
    else:
        assert "no checkpoint was written" in str(error.value)
    assert not (tmp_path / "nan" / "adapter").exists()


SAVE_KILLER = """
import os, signal, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
import tiny_models
import tf_adapters as tfa

model = tiny_models.backbone()
tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
tiny_models.randomize_adapter(model, seed=1)
tfa.save_adapter(model, sys.argv[1])           # the good checkpoint
tiny_models.randomize_adapter(model, seed=2)

def dying_savez(file, **arrays):
    with open(file, "wb") as f:
        f.write(b"PK\\x03\\x04 half a zip")
    os.kill(os.getpid(), signal.SIGKILL)

np.savez = dying_savez
tfa.save_adapter(model, sys.argv[1])           # killed while writing
"""


def test_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    import tiny_models

    path = tmp_path / "adapter"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SAVE_KILLER),
            str(path),
            os.path.dirname(tiny_models.__file__),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    model = tiny_models.backbone()
    tfa.load_adapter(model, str(path))
    expected = tiny_models.backbone()
    tfa.add_adapter(expected, tfa.LoraConfig(rank=2), name="t")
    tiny_models.randomize_adapter(expected, seed=1)
    x = tiny_models.inputs()
    np.testing.assert_allclose(model(x), expected(x), atol=1e-6)


KERAS_KILLER = """
import os, signal, sys, zipfile
sys.path.insert(0, sys.argv[2])
import tiny_models
import tf_adapters as tfa

model = tiny_models.backbone()
tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
tiny_models.randomize_adapter(model, seed=1)
tfa.save_model(model, sys.argv[1])             # the good file
real_write = zipfile.ZipFile.writestr
def dying_writestr(self, *args, **kwargs):
    real_write(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)       # killed mid-file
zipfile.ZipFile.writestr = dying_writestr
tfa.save_model(model, sys.argv[1])
"""


def test_kill_during_a_keras_save_leaves_the_previous_file(tmp_path):
    import keras
    import tiny_models

    path = tmp_path / "model.keras"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(KERAS_KILLER),
            str(path),
            os.path.dirname(tiny_models.__file__),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    loaded = keras.saving.load_model(str(path))  # whole, and safe_mode on
    expected = tiny_models.backbone()
    tfa.add_adapter(expected, tfa.LoraConfig(rank=2), name="t")
    tiny_models.randomize_adapter(expected, seed=1)
    x = tiny_models.inputs()
    np.testing.assert_allclose(loaded(x), expected(x), atol=1e-6)


def test_resume_reads_states_written_before_the_adapter_mapping(tmp_path):
    # Round-1 states saved the adapter flags themselves (rank 8, alpha 16,
    # bottleneck 32, ...); they resolve to the adapter config they trained.
    import json

    import keras

    from tf_adapters.training import checkpointing

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    lora = FinetuneConfig(steps=4)
    checkpointing.save_train_state(model, str(tmp_path), 1, 2, lora)
    meta = json.loads((tmp_path / "state.json").read_text())
    old = {k: v for k, v in meta["config"].items() if k != "adapter_config"}
    old.update(
        rank=8,
        alpha=16.0,
        target_layers=None,
        bottleneck_size=32,
        num_virtual_tokens=16,
        share_weights=False,
        learning_rate=None,  # the method's default, unresolved
    )
    meta["config"] = old
    (tmp_path / "state.json").write_text(json.dumps(meta))
    assert checkpointing.load_train_state(model, str(tmp_path), lora)
    with pytest.raises(ValueError, match=r"\['adapter_config'\] differ"):
        checkpointing.load_train_state(
            model, str(tmp_path), FinetuneConfig(steps=4, rank=4)
        )
    meta["config"]["method"] = "houlsby"  # 32 wide; today's default differs
    (tmp_path / "state.json").write_text(json.dumps(meta))
    houlsby = FinetuneConfig(steps=4, method="houlsby")
    with pytest.raises(ValueError, match=r"\['adapter_config'\] differ"):
        checkpointing.load_train_state(model, str(tmp_path), houlsby)
    same = FinetuneConfig(steps=4, method="houlsby", bottleneck_size=32)
    assert checkpointing.load_train_state(model, str(tmp_path), same)


def test_resume_reads_states_written_before_new_adapter_fields(tmp_path):
    # A state saved before LoRA had `use_rslora` / `rank_pattern` /
    # `alpha_pattern`: those fields take their defaults, as they had then.
    import json

    import keras

    from tf_adapters.training import checkpointing

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    lora = FinetuneConfig(steps=4)
    checkpointing.save_train_state(model, str(tmp_path), 1, 2, lora)
    meta = json.loads((tmp_path / "state.json").read_text())
    for field in ("use_rslora", "rank_pattern", "alpha_pattern"):
        del meta["config"]["adapter_config"][field]
    # ... and kept `None` for the method's default learning rate.
    meta["config"]["learning_rate"] = None
    (tmp_path / "state.json").write_text(json.dumps(meta))
    assert checkpointing.load_train_state(model, str(tmp_path), lora)
    rslora = FinetuneConfig(steps=4, adapter={"use_rslora": True})
    with pytest.raises(ValueError, match=r"use_rslora False \(saved\)"):
        checkpointing.load_train_state(model, str(tmp_path), rslora)


def test_resume_reads_states_written_before_group_by_length(tmp_path):
    # States saved before `group_by_length` existed trained ungrouped.
    import json

    import keras

    from tf_adapters.training import checkpointing

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    config = FinetuneConfig(steps=4)
    checkpointing.save_train_state(model, str(tmp_path), 1, 2, config)
    meta = json.loads((tmp_path / "state.json").read_text())
    assert meta["config"].pop("group_by_length") is False
    (tmp_path / "state.json").write_text(json.dumps(meta))
    assert checkpointing.load_train_state(model, str(tmp_path), config)
    grouped = FinetuneConfig(steps=4, group_by_length=True)
    with pytest.raises(ValueError, match="group_by_length"):
        checkpointing.load_train_state(model, str(tmp_path), grouped)


def test_a_damaged_training_state_is_refused_and_restart_keeps_it(tmp_path):
    import keras

    from tf_adapters.core.integrity import CorruptFileError
    from tf_adapters.pipeline.finetune import move_aside
    from tf_adapters.training import checkpointing

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    config = FinetuneConfig(steps=4)
    state = tmp_path / "train_state"
    checkpointing.save_train_state(model, str(state), 1, 2, config)
    before = [v.numpy() for v in model.weights]
    data = (state / "state.npz").read_bytes()

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    (state / "state.npz").write_bytes(bytes(flipped))
    with pytest.raises(CorruptFileError, match="SHA-256.*--restart"):
        checkpointing.load_train_state(model, str(state), config)
    (state / "state.npz").write_bytes(data[:100])
    with pytest.raises(CorruptFileError, match="SHA-256.*--restart"):
        checkpointing.load_train_state(model, str(state), config)
    (state / "state.json").write_text('{"version": 1, ')
    with pytest.raises(CorruptFileError, match="not valid JSON.*--restart"):
        checkpointing.load_train_state(model, str(state), config)
    for var, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(var.numpy(), value)

    aside = move_aside(str(state))
    assert not state.exists() and (tmp_path / aside).is_dir()
    assert (tmp_path / aside / "state.npz").read_bytes() == data[:100]
    assert move_aside(str(state)) is None
    with pytest.raises(ValueError, match="pass one of them"):
        FinetuneConfig(resume=True, restart=True)
