import os

import numpy as np
import pytest
import tensorflow as tf
import tiny_models

import tf_adapters as tfa
from tf_adapters.export.saved_model import export_saved_model

NAMES = ["lora", "ia3", "houlsby", "parallel", "dora", "pissa"]
# Exported alone too (a wrapped projection, a bottleneck); every adapter's
# rows are also checked against the Keras model with it active.
SINGLES = ["lora", "houlsby"]


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
    for name in SINGLES:
        tfa.set_active_adapter(model, name)
        singles[name] = export_saved_model(model, tmp, name, text=False)
    return model, multi, singles


def _inputs():
    x = tiny_models.inputs(batch=6, length=6, seed=4)
    return {k: tf.constant(v % 20) for k, v in x.items()}


def test_mixed_batch_matches_single_adapter_exports(exports):
    model, multi, singles = exports
    chosen = ["lora", "dora", "houlsby", "pissa", "ia3", "parallel"]
    x = _inputs()
    loaded = tf.saved_model.load(multi)
    logits = loaded.signatures["logits"](adapter=tf.constant(chosen), **x)
    generated = loaded.signatures["generate_ids"](
        adapter=tf.constant(chosen), max_new_tokens=tf.constant(4), **x
    )
    for i, name in enumerate(chosen):
        row = {k: v[i : i + 1] for k, v in x.items()}
        tfa.set_active_adapter(model, name)
        np.testing.assert_allclose(
            logits["logits"][i : i + 1], model(row), atol=1e-5
        )
        if name not in singles:
            continue
        single = tf.saved_model.load(singles[name])
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
    # Separate exports differ only in their adapter: each holds the base.
    separate = len(NAMES) * min(_size(p) for p in singles.values())
    print(
        f"{len(NAMES)} adapters: one export {_size(multi)} B, "
        f"separate exports at least {separate} B"
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
    tfa.add_fusion(model, ["lora", "pissa"], name="f", activate=False)
    with pytest.raises(ValueError, match="'f' is a fusion"):
        export_saved_model(model, str(tmp_path), adapters=["lora", "f"])
    assert not os.path.exists(tmp_path / "gpt2_causal_lm")


def test_weighted_mix_of_adapters_per_example(exports):
    from tf_adapters.core.routing import route_by_weights
    from tf_adapters.injection.lifecycle import adapter_variables

    model, multi, _ = exports
    loaded = tf.saved_model.load(multi)
    names = loaded.signatures["adapter_names"]()["adapter_names"].numpy()
    assert [n.decode() for n in names] == NAMES
    x = _inputs()
    column = {name: i for i, name in enumerate(NAMES)}
    weights = np.zeros((6, len(NAMES)), "float32")
    weights[0, column["dora"]] = 1.0  # one-hot: the named route
    weights[1, column["lora"]] = 0.3  # a fraction of one LoRA update
    weights[2, [column["lora"], column["houlsby"]]] = 0.5  # a mix
    # row 3: all zero, the base model
    weights[4, [column["pissa"], column["ia3"]]] = [0.7, 0.6]
    weights[5, column["parallel"]] = 1.5  # extrapolates
    mixed = loaded.signatures["logits_weighted"](
        adapter_weights=tf.constant(weights), **x
    )["logits"].numpy()

    named = loaded.signatures["logits"](adapter=tf.constant(["dora"] * 6), **x)[
        "logits"
    ].numpy()
    np.testing.assert_allclose(mixed[0], named[0], atol=1e-5)

    # A LoRA update scaled by 0.3 is LoRA with B scaled by 0.3.
    tfa.set_active_adapter(model, "lora")
    b_vars = [
        v
        for k, v in adapter_variables(model.backbone, "lora").items()
        if k.endswith("lora_b")
    ]
    saved = [v.numpy() for v in b_vars]
    for v in b_vars:
        v.assign(0.3 * v.numpy())
    expected = np.asarray(model({k: v[1:2] for k, v in x.items()}))
    for v, value in zip(b_vars, saved, strict=True):
        v.assign(value)
    np.testing.assert_allclose(mixed[1:2], expected, atol=1e-5)

    tfa.disable_adapters(model)
    base = np.asarray(model({k: v[3:4] for k, v in x.items()}))
    tfa.enable_adapters(model)
    np.testing.assert_allclose(mixed[3:4], base, atol=1e-5)

    # Every row equals the Keras model under the same weights.
    with route_by_weights(tf.constant(weights), NAMES):
        keras_mixed = np.asarray(model(x))
    np.testing.assert_allclose(mixed, keras_mixed, atol=1e-5)
    assert np.abs(mixed[2] - named[2]).max() > 1e-4  # the mix matters

    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        loaded.signatures["logits_weighted"](
            adapter_weights=tf.constant(np.full((6, len(NAMES)), np.nan, "f4")),
            **x,
        )
