"""Files written before the architecture change still load (issue 15).

`tests/fixtures/round1/` holds a `.keras` file and adapter checkpoints
written by the round-1 code (see `tests/fixtures/make_round1.py`), with the
outputs that code computed.
"""

import os

import keras
import numpy as np
import pytest

import tf_adapters as tfa

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "round1")
METHODS = ("lora", "parallel", "ia3")


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(HERE, "expected.npz")) as npz:
        return {key: npz[key] for key in npz.files}


def _inputs(expected):
    return {
        "token_ids": expected["token_ids"],
        "padding_mask": expected["padding_mask"],
    }


def test_round1_keras_file_loads_with_its_adapters(expected):
    model = keras.saving.load_model(os.path.join(HERE, "adapted.keras"))
    assert tfa.list_adapters(model) == list(METHODS)
    assert tfa.active_adapter(model) == "parallel"
    for name in METHODS:
        tfa.set_active_adapter(model, name)
        np.testing.assert_allclose(
            model(_inputs(expected)), expected[name], atol=1e-5
        )
    tfa.disable_adapters(model)
    np.testing.assert_allclose(
        model(_inputs(expected)), expected["base"], atol=1e-5
    )


@pytest.mark.parametrize("name", METHODS)
def test_round1_adapter_checkpoint_loads(expected, name):
    base = keras.saving.load_model(os.path.join(HERE, "base.keras"))
    np.testing.assert_allclose(
        base(_inputs(expected)), expected["base"], atol=1e-5
    )
    tfa.load_adapter(base, os.path.join(HERE, f"adapter_{name}"))
    assert tfa.active_adapter(base) == name
    np.testing.assert_allclose(
        base(_inputs(expected)), expected[name], atol=1e-5
    )


@pytest.fixture(scope="module")
def expected_more():
    with np.load(os.path.join(HERE, "expected_more.npz")) as npz:
        return {key: npz[key] for key in npz.files}


def test_round1_merged_keras_file_keeps_its_merge(expected, expected_more):
    model = keras.saving.load_model(os.path.join(HERE, "merged.keras"))
    assert tfa.list_adapters(model) == ["prompt", "houlsby_ln", "lora_merged"]
    x = _inputs(expected)
    np.testing.assert_allclose(
        model(x), expected_more["lora_merged"], atol=1e-5
    )
    tfa.unmerge_adapter(model)
    for name in ("prompt", "houlsby_ln"):
        tfa.set_active_adapter(model, name)
        np.testing.assert_allclose(model(x), expected_more[name], atol=1e-5)


@pytest.mark.parametrize("name", ["prompt", "houlsby_ln"])
def test_round1_prompt_and_layer_norm_checkpoints_load(
    expected, expected_more, name
):
    base = keras.saving.load_model(os.path.join(HERE, "base_more.keras"))
    tfa.load_adapter(base, os.path.join(HERE, f"adapter_{name}"))
    np.testing.assert_allclose(
        base(_inputs(expected)), expected_more[name], atol=1e-5
    )


def test_round1_task_model_keras_file_loads(expected, expected_more):
    # LabelWordClassifier lived in tf_adapters.training then.
    model = keras.saving.load_model(os.path.join(HERE, "classifier.keras"))
    assert isinstance(model, tfa.LabelWordClassifier)
    np.testing.assert_allclose(
        model(_inputs(expected)), expected_more["classifier"], atol=1e-5
    )
