import os

import numpy as np
import pytest
import tensorflow as tf
import tiny_models

import tf_adapters as tfa
from tf_adapters.export.saved_model import export_saved_model

NAMES = ["lora", "ia3", "houlsby", "parallel"]


def _size(path):
    return sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(path)
        for f in files
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("multi"))
    model = tiny_models.gpt2_causal_lm()
    configs = tiny_models.all_configs()
    for seed, name in enumerate(NAMES, start=1):
        tfa.add_adapter(model, configs[name], name=name)
        tiny_models.randomize_adapter(model, seed=seed)
    multi = export_saved_model(model, tmp, "multi", adapters=NAMES, text=False)
    singles = {}
    for name in NAMES:
        tfa.set_active_adapter(model, name)
        singles[name] = export_saved_model(model, tmp, name, text=False)
    return model, multi, singles


def _inputs():
    x = tiny_models.inputs(batch=5, length=6, seed=4)
    return {k: tf.constant(v % 20) for k, v in x.items()}


def test_mixed_batch_matches_single_adapter_exports(exports):
    _, multi, singles = exports
    chosen = ["lora", "ia3", "houlsby", "parallel", "lora"]
    x = _inputs()
    loaded = tf.saved_model.load(multi)
    logits = loaded.signatures["logits"](adapter=tf.constant(chosen), **x)
    generated = loaded.signatures["generate_ids"](
        adapter=tf.constant(chosen), max_new_tokens=tf.constant(4), **x
    )
    for i, name in enumerate(chosen):
        single = tf.saved_model.load(singles[name])
        row = {k: v[i : i + 1] for k, v in x.items()}
        expected = single.signatures["logits"](**row)["logits"]
        np.testing.assert_allclose(
            logits["logits"][i : i + 1], expected, atol=1e-5
        )
        ids = single.signatures["generate_ids"](
            max_new_tokens=tf.constant(4), **row
        )
        n = int(ids["padding_mask"].numpy().sum())
        np.testing.assert_array_equal(
            generated["token_ids"][i, :n], ids["token_ids"][0, :n]
        )


def test_one_export_is_smaller_than_separate_exports(exports):
    _, multi, singles = exports
    separate = sum(_size(p) for p in singles.values())
    print(
        f"{len(singles)} adapters: one export {_size(multi)} B, "
        f"separate exports {separate} B"
    )
    assert _size(multi) < separate


def test_unknown_adapter_at_serving_time(exports):
    _, multi, _ = exports
    loaded = tf.saved_model.load(multi)
    with pytest.raises(tf.errors.InvalidArgumentError, match="unknown adapter"):
        loaded.signatures["logits"](
            adapter=tf.constant(["nope"] * 5), **_inputs()
        )


def test_bad_adapter_lists(exports, tmp_path):
    model = exports[0]
    with pytest.raises(ValueError, match="Unknown adapter 'x'"):
        export_saved_model(model, str(tmp_path), adapters=["lora", "x"])
    with pytest.raises(ValueError, match="non-empty list"):
        export_saved_model(model, str(tmp_path), adapters="lora")
    tfa.add_adapter(
        model, tfa.PromptTuningConfig(num_virtual_tokens=2), name="p"
    )
    with pytest.raises(ValueError, match="prompt tuning"):
        export_saved_model(model, str(tmp_path), adapters=["p"])
    assert not os.path.exists(tmp_path / "gpt2_causal_lm")
