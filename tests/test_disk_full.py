"""A save that fails on a full disk (ENOSPC, simulated) raises
`tfa.SaveError` naming the path that could not be written; what was saved
there before is intact and no temporary copy is left."""

import errno
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tiny_models

import tf_adapters as tfa
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.training import checkpointing

NO_SPACE = os.strerror(errno.ENOSPC)


def _half_written_then_full(file, *args, **kwargs):
    with open(file, "wb") as f:
        f.write(b"PK\x03\x04 half a file")
    raise OSError(errno.ENOSPC, NO_SPACE, str(file))


def _files(folder):
    """`{relative path: bytes}` of every file under `folder`."""
    return {
        os.path.relpath(os.path.join(root, name), folder): open(
            os.path.join(root, name), "rb"
        ).read()
        for root, _, names in os.walk(folder)
        for name in names
    }


def _raises_save_error(path):
    return pytest.raises(
        tfa.SaveError,
        match=f"Could not write {re.escape(str(path))}: the disk is full",
    )


def test_adapter_checkpoint_and_training_state(tmp_path, monkeypatch):
    model = tiny_models.backbone()
    tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
    tiny_models.randomize_adapter(model, seed=1)
    adapter = tmp_path / "adapter"
    tfa.save_adapter(model, str(adapter))
    trainer = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    trainer.compile(optimizer="adam", loss="mse")
    state = tmp_path / "train_state"
    config = FinetuneConfig(steps=4)
    checkpointing.save_train_state(trainer, str(state), 1, 2, config)
    before = {"adapter": _files(adapter), "train_state": _files(state)}
    tiny_models.randomize_adapter(model, seed=2)

    monkeypatch.setattr(np, "savez", _half_written_then_full)
    with _raises_save_error(adapter) as error:
        tfa.save_adapter(model, str(adapter))
    assert error.value.errno == errno.ENOSPC
    assert isinstance(error.value, OSError)
    with _raises_save_error(state):
        checkpointing.save_train_state(trainer, str(state), 2, 4, config)
    assert sorted(os.listdir(tmp_path)) == ["adapter", "train_state"]
    assert {"adapter": _files(adapter), "train_state": _files(state)} == before

    fresh = tiny_models.backbone()
    tfa.load_adapter(fresh, str(adapter))  # still whole and verified


def test_saved_model_version_and_keras_file(tmp_path, monkeypatch):
    model_dir = tmp_path / "saved_models" / "clf"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "1" / "saved_model.pb").write_bytes(b"version 1")
    classifier = tfa.LastTokenClassifier(tiny_models.backbone(), num_classes=2)

    def full_disk(archive, export_dir, *args, **kwargs):
        with open(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        # What TensorFlow raises for ENOSPC.
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{export_dir}/variables; {NO_SPACE}"
        )

    archive_class = type(keras.export.ExportArchive())
    monkeypatch.setattr(archive_class, "write_out", full_disk)
    with _raises_save_error(model_dir / "2"):
        tfa.export_saved_model(
            classifier, str(tmp_path / "saved_models"), name="clf"
        )
    assert os.listdir(model_dir) == ["1"]
    assert _files(model_dir) == {"1/saved_model.pb": b"version 1"}

    path = tmp_path / "m.keras"
    small = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    tfa.save_model(small, str(path))
    kept = path.read_bytes()
    monkeypatch.setattr(
        keras.Model,
        "save",
        lambda self, file, **kwargs: _half_written_then_full(file),
    )
    with _raises_save_error(path):
        tfa.save_model(small, str(path))
    assert path.read_bytes() == kept
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "saved_models"]
