"""A training state's files are checked before a variable is assigned
(issue 20): `state.json` by field, `state.npz` against the shapes it
records, the arrays against the model (shape and dtype). Damage is a
`CorruptFileError` that names the file and offers `--restart`."""

import io
import json
import zipfile

import keras
import numpy as np
import pytest
from fuzz import corpus

import tf_adapters as tfa
from tf_adapters.training.checkpointing import load_train_state
from tf_adapters.training.checkpointing import read_train_state


@pytest.fixture()
def state(tmp_path):
    folder = tmp_path / "train_state"
    folder.mkdir()
    for name, data in corpus.training_state().items():
        (folder / name).write_bytes(data)
    return folder


def _without_digest(folder, **changes):
    meta = json.loads((folder / "state.json").read_text())
    del meta["sha256"]
    meta.update(changes)
    (folder / "state.json").write_text(json.dumps(meta))


def _replace_array(folder, name, array):
    out, source = io.BytesIO(), (folder / "state.npz").read_bytes()
    with zipfile.ZipFile(io.BytesIO(source)) as old:
        with zipfile.ZipFile(out, "w") as new:
            for info in old.infolist():
                data = old.read(info)
                if info.filename == f"{name}.npy":
                    member = io.BytesIO()
                    np.save(member, array)
                    data = member.getvalue()
                new.writestr(info.filename, data)
    (folder / "state.npz").write_bytes(out.getvalue())


def test_a_fresh_state_reads_back(state):
    meta, _, arrays = read_train_state(str(state))
    assert [list(a.shape) for a in arrays] == meta["shapes"]


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"shapes": [[3, 2]]}, "holds variable 00001, which state.json"),
        ({"epoch": "1"}, "lacks its run options .*`epoch`"),
        ({"config": {"adapter_config": {"method": "x"}}}, "cannot be read"),
    ],
)
def test_state_json_and_npz_must_agree(state, changes, match):
    _without_digest(state, **changes)
    with pytest.raises(tfa.CorruptFileError, match=f"{match}.*--restart"):
        read_train_state(str(state))


def test_arrays_must_match_the_recorded_shapes(state):
    _without_digest(state)
    _replace_array(state, "00000", np.zeros((2, 3), "float32"))
    with pytest.raises(tfa.CorruptFileError, match=r"state.npz .*\(2, 3\)"):
        read_train_state(str(state))


def test_arrays_must_have_the_models_dtypes(state):
    _without_digest(state)
    meta = json.loads((state / "state.json").read_text())
    _replace_array(state, "00000", np.zeros(meta["shapes"][0], "float64"))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.1)]
    )
    model.compile(optimizer="adam", loss="mse")
    before = [np.array(v) for v in model.weights]
    with pytest.raises(ValueError, match="has dtype float64, the model's"):
        load_train_state(model, str(state), tfa.FinetuneConfig())
    for var, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(np.array(var), value)
