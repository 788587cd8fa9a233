"""LoRA+: LoRA's B matrices update with `loraplus_lr_ratio` times the
learning rate, every other weight with the learning rate itself."""

import copy
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_adapters as tfa
from tests import tiny_models
from tf_adapters.cli.main import build_parser
from tf_adapters.cli.main import main
from tf_adapters.pipeline.compare import variants
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.training.loraplus import is_lora_b

RATIO = 4.0  # a power of two: `lr * RATIO` is exact in float32


def _adapted_backbone():
    """A tiny GPT-2 with a random LoRA adapter (so A has gradients) and a
    trainable layer norm (a weight that is neither A nor B)."""
    backbone = tiny_models.backbone()
    config = tfa.LoraConfig(rank=2, trainable_layers=["layer_norm"])
    tfa.add_adapter(backbone, config)
    tiny_models.randomize_adapter(backbone, seed=1)
    return backbone


def _gradients(backbone):
    weights = backbone.trainable_weights
    with tf.GradientTape() as tape:
        outputs = backbone(tiny_models.inputs())
        loss = tf.reduce_sum(tf.square(outputs))
    return [tf.convert_to_tensor(g) for g in tape.gradient(loss, weights)]


def _step_deltas(backbone, optimizer, grads):
    """How far one `optimizer` step with `grads` moves each trainable weight;
    the weights are put back afterwards."""
    weights = backbone.trainable_weights
    start = [np.array(w) for w in weights]
    optimizer.apply(grads, weights)
    deltas = [np.array(w) - s for w, s in zip(weights, start, strict=True)]
    for w, s in zip(weights, start, strict=True):
        w.assign(s)
    return deltas


def _compare_one_step(make_optimizer):
    backbone = _adapted_backbone()
    grads = _gradients(backbone)
    plain = _step_deltas(backbone, make_optimizer(), grads)
    lora_plus = tfa.loraplus_optimizer(make_optimizer(), RATIO)
    boosted = _step_deltas(backbone, lora_plus, grads)
    kinds = [is_lora_b(w) for w in backbone.trainable_weights]
    return backbone.trainable_weights, kinds, plain, boosted


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.SGD(1.0),
        # Adam's first step is about lr·sign(g): linear in lr.
        lambda: keras.optimizers.Adam(0.01),
    ],
    ids=["sgd", "adam"],
)
def test_b_moves_ratio_times_as_far_and_the_rest_the_same(make_optimizer):
    weights, kinds, plain, boosted = _compare_one_step(make_optimizer)
    assert sum(kinds) == 4 and not all(kinds)  # 2 layers × query, value
    assert any(w.path.endswith("layer_norm/gamma") for w in weights)
    for w, is_b, p, b in zip(weights, kinds, plain, boosted, strict=True):
        assert np.abs(p).max() > 1e-3, w.path  # the step moved it
        expected = RATIO * p if is_b else p
        # A delta read back as `(w + Δ) − w` is off by float32's rounding
        # of `w + Δ`: half a unit in the last place of `w`, times RATIO.
        ulp = np.spacing(np.abs(np.array(w)).max())
        np.testing.assert_allclose(b, expected, rtol=1e-6, atol=RATIO * ulp)


def test_ratio_one_is_exactly_the_plain_optimizer():
    backbone = _adapted_backbone()
    grads = _gradients(backbone)
    for make in (lambda: keras.optimizers.Adam(0.01), keras.optimizers.SGD):
        plain = _step_deltas(backbone, make(), grads)
        same = _step_deltas(backbone, tfa.loraplus_optimizer(make(), 1), grads)
        for p, s in zip(plain, same, strict=True):
            np.testing.assert_array_equal(p, s)


def _lora_dense_model(seed=0):
    """A Dense layer with Keras's own LoRA (`lora_kernel_a/b`) on it."""
    keras.utils.set_random_seed(seed)
    dense = keras.layers.Dense(3, name="dense")
    model = keras.Sequential([keras.Input((4,)), dense])
    dense.enable_lora(2)
    return model


def _fit_deltas(optimizer):
    model = _lora_dense_model()
    model.compile(optimizer=optimizer, loss="mse", jit_compile=True)
    start = [np.array(w) for w in model.trainable_weights]
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, np.ones((8, 3), "float32"), batch_size=8, verbose=0)
    return {
        w.name: np.array(w) - s
        for w, s in zip(model.trainable_weights, start, strict=True)
    }


def test_fit_with_keras_lora_under_xla():
    plain = _fit_deltas(keras.optimizers.SGD(0.1))
    boosted = _fit_deltas(tfa.loraplus_optimizer(keras.optimizers.SGD(0.1), 8))
    assert sorted(plain) == ["bias", "lora_kernel_a", "lora_kernel_b"]
    b = "lora_kernel_b"
    assert np.abs(plain[b]).max() > 1e-3
    np.testing.assert_allclose(boosted[b], 8 * plain[b], rtol=1e-5)
    for path in plain:
        if path != b:
            np.testing.assert_allclose(boosted[path], plain[path], rtol=1e-6)


def test_weight_decay_uses_the_plain_rate_and_keeps_exclusions():
    # With zero gradients Adam(W) moves nothing but the decay
    # w·(1 − lr·wd), which Keras applies with the plain learning rate.
    backbone = _adapted_backbone()
    weights = backbone.trainable_weights
    zeros = [tf.zeros_like(w) for w in weights]
    plain = keras.optimizers.AdamW(0.1, weight_decay=0.5)
    decayed = _step_deltas(
        backbone, tfa.loraplus_optimizer(plain, RATIO), zeros
    )
    for w, d in zip(weights, decayed, strict=True):
        np.testing.assert_allclose(d, -0.05 * np.array(w), rtol=1e-5)

    excluding = keras.optimizers.AdamW(0.1, weight_decay=0.5)
    excluding.exclude_from_weight_decay(var_names=["lora_b"])
    boosted = tfa.loraplus_optimizer(excluding, RATIO)
    deltas = _step_deltas(backbone, boosted, zeros)
    for w, d in zip(weights, deltas, strict=True):
        assert (np.abs(d).max() == 0) == is_lora_b(w), w.path


def test_config_round_trip_and_schedules():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    optimizer = tfa.loraplus_optimizer(keras.optimizers.Adam(schedule), 16)
    config = optimizer.get_config()
    assert config["loraplus_lr_ratio"] == 16.0
    # Keras's `from_config` replaces a schedule's config by the schedule.
    again = type(optimizer).from_config(copy.deepcopy(config))
    assert type(again) is type(optimizer)
    assert again.loraplus_lr_ratio == 16.0
    assert isinstance(again.learning_rate, tf.Tensor)  # the schedule's value
    assert again.get_config() == config

    model = _lora_dense_model()
    model.compile(optimizer=optimizer, loss="mse")
    data = keras.optimizers.serialize(model.optimizer)
    assert data["registered_name"] == "tf_adapters>LoraPlusAdam"
    restored = keras.optimizers.deserialize(json.loads(json.dumps(data)))
    assert type(restored).__name__ == "LoraPlusAdam"
    assert restored.get_config() == config
    # Built-in optimizers' twins are registered at import, for a fresh
    # process that has made none yet.
    found = keras.saving.get_registered_object("tf_adapters>LoraPlusLion")
    assert found is not None and issubclass(found, keras.optimizers.Lion)


def test_keras_file_of_a_compiled_model_keeps_lora_plus(tmp_path):
    model = _lora_dense_model()
    optimizer = tfa.loraplus_optimizer(keras.optimizers.Adam(0.01), 8)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.ones((4, 4), "float32")
    model.fit(x, np.zeros((4, 3), "float32"), verbose=0)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer).__name__ == "LoraPlusAdam"
    assert loaded.optimizer.loraplus_lr_ratio == 8.0
    for a, b in zip(
        loaded.optimizer.variables, model.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(np.array(a), np.array(b))


def test_any_optimizer_class_gets_a_twin():
    class Halving(keras.optimizers.SGD):
        pass

    optimizer = tfa.loraplus_optimizer(Halving(0.1), 2)
    assert isinstance(optimizer, Halving)
    assert type(optimizer).__name__ == "LoraPlusHalving"
    assert optimizer.get_config()["loraplus_lr_ratio"] == 2.0


def _built_adam():
    optimizer = keras.optimizers.Adam()
    optimizer.build([keras.Variable(np.zeros(2, "float32"))])
    return optimizer


@pytest.mark.parametrize(
    "optimizer, ratio, match",
    [
        ("adam", 2, r"`optimizer` must be a `keras.optimizers.Optimizer`"),
        (None, 2, "Received: optimizer=None"),
        (keras.optimizers.Adam, 2, "`optimizer` must be"),
        (_built_adam, 2, r"`optimizer` \(Adam\) is already built"),
        (
            lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()),
            2,
            r"`optimizer` \(LossScaleOptimizer\) updates variables through",
        ),
        (
            lambda: tfa.loraplus_optimizer(keras.optimizers.SGD(), 2),
            3,
            r"already a LoRA\+ optimizer \(LoraPlusSGD, ratio 2\)",
        ),
        (keras.optimizers.SGD, 0, r"loraplus_lr_ratio=0\."),
        (keras.optimizers.SGD, -1.5, r"loraplus_lr_ratio=-1.5\."),
        (keras.optimizers.SGD, "2", r"loraplus_lr_ratio='2'"),
        (keras.optimizers.SGD, True, r"loraplus_lr_ratio=True"),
        (keras.optimizers.SGD, float("nan"), r"loraplus_lr_ratio=nan"),
        (keras.optimizers.SGD, None, r"loraplus_lr_ratio=None"),
    ],
)
def test_bad_inputs_name_the_argument(optimizer, ratio, match):
    if callable(optimizer) and not isinstance(optimizer, type):
        optimizer = optimizer()
    elif optimizer is keras.optimizers.SGD:
        optimizer = optimizer()
    with pytest.raises(ValueError, match=match):
        tfa.loraplus_optimizer(optimizer, ratio)


def test_finetune_config_validates_the_ratio():
    assert FinetuneConfig().loraplus_lr_ratio is None
    assert FinetuneConfig(loraplus_lr_ratio=16).loraplus_lr_ratio == 16.0
    with pytest.raises(ValueError, match=r"`loraplus_lr_ratio` must be > 0"):
        FinetuneConfig(loraplus_lr_ratio=0)
    with pytest.raises(TypeError, match="`loraplus_lr_ratio` must be float"):
        FinetuneConfig(loraplus_lr_ratio="big")
    with pytest.raises(
        ValueError, match=r"`loraplus_lr_ratio`.*method='ia3' has none"
    ):
        FinetuneConfig(method="ia3", loraplus_lr_ratio=2.0)


def test_the_pipeline_compiles_with_lora_plus():
    from types import SimpleNamespace

    from tf_adapters.pipeline.stages import Run
    from tf_adapters.pipeline.stages import compile_for_training

    task = SimpleNamespace(loss=lambda: "mse", compile_metrics=lambda: None)
    for ratio, name in ((None, "Adam"), (8, "LoraPlusAdam")):
        config = FinetuneConfig(loraplus_lr_ratio=ratio, jit_compile=False)
        run = Run(config, None, task=task, trainer=_lora_dense_model())
        compile_for_training(run)
        assert type(run.trainer.optimizer).__name__ == name
    assert run.trainer.optimizer.loraplus_lr_ratio == 8.0


def test_cli_flag(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(
        "tf_adapters.pipeline.run_finetune",
        lambda config: seen.__setitem__("config", config),
    )
    assert main(["finetune", "--loraplus-lr-ratio", "16", "--no-export"]) == 0
    assert seen["config"].loraplus_lr_ratio == 16.0
    assert main(["finetune", "--loraplus-lr-ratio", "0"]) == 2
    assert "`loraplus_lr_ratio` must be > 0" in capsys.readouterr().err
    argv = ["finetune", "--method", "ia3", "--loraplus-lr-ratio", "2"]
    assert main(argv) == 2
    assert "method='ia3' has none" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["finetune", "--help"])
    assert "--loraplus-lr-ratio RATIO" in capsys.readouterr().out


def test_compare_adds_a_lora_plus_run_of_lora_only(tmp_path, monkeypatch):
    from tf_adapters.pipeline import compare

    config = FinetuneConfig(loraplus_lr_ratio=4)
    runs = dict(variants(config, ["full", "lora", "ia3"]))
    assert list(runs) == ["full", "lora", "ia3", "lora+loraplus"]
    assert runs["lora+loraplus"]["loraplus_lr_ratio"] == 4.0
    seen = {}
    monkeypatch.setattr(
        compare, "_run_child", lambda c, d, label: seen.__setitem__(label, c)
    )
    argv = ["compare", "--compare-output", str(tmp_path), "--methods"]
    argv += ["full", "lora", "ia3", "--loraplus-lr-ratio", "4"]
    with pytest.raises(RuntimeError, match="Every run failed"):  # faked runs
        main(argv)
    ratios = {label: c.loraplus_lr_ratio for label, c in seen.items()}
    assert ratios == {
        "full": None,
        "lora": None,
        "ia3": None,
        "lora+loraplus": 4.0,
    }


def test_training_states_saved_before_lora_plus_still_resume(tmp_path):
    from tf_adapters.training import checkpointing

    model = _lora_dense_model()
    model.compile(optimizer="adam", loss="mse")
    config = FinetuneConfig(steps=4)
    checkpointing.save_train_state(model, str(tmp_path), 1, 2, config)
    meta = json.loads((tmp_path / "state.json").read_text())
    del meta["config"]["loraplus_lr_ratio"]  # as written before the field
    (tmp_path / "state.json").write_text(json.dumps(meta))
    assert checkpointing.load_train_state(model, str(tmp_path), config)
    boosted = FinetuneConfig(steps=4, loraplus_lr_ratio=4)
    with pytest.raises(ValueError, match=r"\['loraplus_lr_ratio'\] differ"):
        checkpointing.load_train_state(model, str(tmp_path), boosted)
