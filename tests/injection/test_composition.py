"""Several adapters at once: `Stack` and `Parallel` against hand-computed
outputs, what trains, saving, and the refusals."""

import keras
import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.core.composition import Composition
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.injection.lifecycle import adapter_variables

FFN_OUT = "transformer_layer_0/feedforward_output_dense"


def _adapted(configs, family="gpt2"):
    """A tiny backbone with one randomized adapter per config."""
    backbone = tiny_models.backbone(family)
    for i, (name, config) in enumerate(configs.items()):
        tfa.add_adapter(backbone, config, name=name)
        tiny_models.randomize_adapter(backbone, seed=i + 1)
    return backbone


def _bottlenecks():
    return _adapted(
        {
            "lang": tfa.BottleneckConfig(variant="pfeiffer"),
            "task": tfa.BottleneckConfig(variant="pfeiffer"),
        }
    )


def _chain(backbone, path):
    slot = next(s for s in iter_slots(backbone) if s.path == path)
    return {w.adapter_name: w for w in slot.wrappers()}, slot.base


def _block(wrapper, y):
    return np.asarray(wrapper.scaling * wrapper.block(y))


def test_stack_and_parallel_equal_hand_computed_outputs_on_a_layer():
    backbone = _bottlenecks()
    wrappers, dense = _chain(backbone, FFN_OUT)
    outer = next(iter(wrappers.values()))  # the slot's outermost wrapper
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32")
    y = np.asarray(dense(x))
    lang, task = wrappers["lang"], wrappers["task"]

    tfa.set_active_adapter(backbone, tfa.Stack("lang", "task"))
    after_lang = y + _block(lang, y)
    want = after_lang + _block(task, after_lang)
    np.testing.assert_allclose(np.asarray(outer(x)), want, atol=1e-5)

    tfa.set_active_adapter(backbone, tfa.Stack("task", "lang"))
    after_task = y + _block(task, y)
    want = after_task + _block(lang, after_task)
    np.testing.assert_allclose(np.asarray(outer(x)), want, atol=1e-5)

    tfa.set_active_adapter(backbone, tfa.Parallel("lang", "task"))
    want = y + _block(lang, y) + _block(task, y)
    np.testing.assert_allclose(np.asarray(outer(x)), want, atol=1e-5)

    tfa.set_active_adapter(
        backbone, tfa.Parallel("lang", "task", weights=[0.5, -2.0])
    )
    want = y + 0.5 * _block(lang, y) - 2.0 * _block(task, y)
    np.testing.assert_allclose(np.asarray(outer(x)), want, atol=1e-5)


def test_the_orders_differ_for_bottlenecks_on_the_whole_model():
    backbone = _bottlenecks()
    x = tiny_models.inputs()
    outputs = {}
    for comp in (
        tfa.Stack("lang", "task"),
        tfa.Stack("task", "lang"),
        tfa.Parallel("lang", "task"),
    ):
        tfa.set_active_adapter(backbone, comp)
        outputs[repr(comp)] = np.asarray(backbone(x))
    values = list(outputs.values())
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(values[i] - values[j]).max() > 1e-3


def _lora_deltas(backbone, name):
    found = {}
    for slot in iter_slots(backbone):
        for wrapper in slot.wrappers():
            if wrapper.adapter_name == name:
                found[slot.path] = np.asarray(wrapper.delta())
    return found


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_parallel_lora_equals_the_base_with_summed_updates(family):
    backbone = _adapted(
        {
            "a": tfa.LoraConfig(rank=2, alpha=4),
            "b": tfa.LoraConfig(rank=3, alpha=3),
        },
        family,
    )
    x = tiny_models.inputs()
    tfa.set_active_adapter(backbone, tfa.Parallel("a", "b", weights=[0.5, 2]))
    got = np.asarray(backbone(x))
    reference = tiny_models.backbone(family)  # the same base weights
    delta_a, delta_b = _lora_deltas(backbone, "a"), _lora_deltas(backbone, "b")
    for slot in iter_slots(reference):
        if slot.path in delta_a:
            kernel = slot.layer.kernel
            kernel.assign(
                kernel + 0.5 * delta_a[slot.path] + 2 * delta_b[slot.path]
            )
    np.testing.assert_allclose(got, np.asarray(reference(x)), atol=1e-5)
    # On the input side stacking and summing are the same.
    tfa.set_active_adapter(backbone, tfa.Stack("a", "b"))
    tfa.set_active_adapter(backbone, tfa.Parallel("a", "b"))
    parallel = np.asarray(backbone(x))
    tfa.set_active_adapter(backbone, tfa.Stack("b", "a"))
    np.testing.assert_allclose(np.asarray(backbone(x)), parallel, atol=1e-5)


def test_lora_and_ia3_and_a_bottleneck_compose():
    backbone = _adapted(
        {
            "lora": tfa.LoraConfig(rank=2),
            "ia3": tfa.IA3Config(),
            "bn": tfa.BottleneckConfig(variant="parallel"),
        }
    )
    x = tiny_models.inputs()
    single = {}
    for name in ("lora", "ia3", "bn"):
        tfa.set_active_adapter(backbone, name)
        single[name] = np.asarray(backbone(x))
    tfa.set_active_adapter(backbone, tfa.Stack("lora", "ia3", "bn"))
    stacked = np.asarray(backbone(x))
    assert np.all(np.isfinite(stacked))
    for out in single.values():
        assert np.abs(stacked - out).max() > 1e-3
    # A one-member weighting leaves exactly that adapter's effect.
    tfa.set_active_adapter(
        backbone, tfa.Parallel("lora", "ia3", "bn", weights=[0, 1, 0])
    )
    np.testing.assert_allclose(
        np.asarray(backbone(x)), single["ia3"], atol=1e-5
    )
    tfa.set_active_adapter(
        backbone, tfa.Parallel("lora", "ia3", "bn", weights=[0, 0, 1])
    )
    np.testing.assert_allclose(np.asarray(backbone(x)), single["bn"], atol=1e-5)


def test_what_trains_and_fit_leaves_the_rest_bit_identical():
    model = tiny_models.gpt2_causal_lm()
    for name in ("lang", "task"):
        tfa.add_adapter(model, tfa.BottleneckConfig(), name=name)
    tfa.set_active_adapter(model, tfa.Stack("lang", "task"), trainable=["task"])
    task = adapter_variables(model.backbone, "task").values()
    assert {id(v) for v in model.trainable_weights} == {id(v) for v in task}
    before = {id(v): v.numpy() for v in model.weights}
    trained = {id(v) for v in model.trainable_weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(tiny_models.TRAIN_TEXT, batch_size=4, epochs=1, verbose=0)
    for v in model.weights:
        if id(v) in trained:
            continue
        np.testing.assert_array_equal(v.numpy(), before[id(v)], v.path)
    assert any(
        not np.array_equal(v.numpy(), before[id(v)])
        for v in model.trainable_weights
    )
    tfa.set_active_adapter(model, tfa.Parallel("lang", "task"))
    assert len(model.trainable_weights) == 2 * len(trained)


def test_keras_file_keeps_the_composition(tmp_path):
    backbone = _bottlenecks()
    x = tiny_models.inputs()
    comp = tfa.Parallel("task", "lang", weights=[1.5, 0.5])
    tfa.set_active_adapter(backbone, comp, trainable=["task"])
    want = np.asarray(backbone(x))
    path = str(tmp_path / "m.keras")
    tfa.save_model(backbone, path)
    loaded = keras.saving.load_model(path)
    assert tfa.active_adapter(loaded) == comp
    np.testing.assert_allclose(np.asarray(loaded(x)), want, atol=1e-6)
    assert len(loaded.trainable_weights) == len(backbone.trainable_weights)


def test_switching_back_disabling_and_deleting():
    backbone = _bottlenecks()
    x = tiny_models.inputs()
    base = np.asarray(tiny_models.backbone()(x))
    tfa.set_active_adapter(backbone, "lang")
    lang = np.asarray(backbone(x))
    tfa.set_active_adapter(backbone, tfa.Stack("lang", "task"))
    tfa.disable_adapters(backbone)
    np.testing.assert_array_equal(np.asarray(backbone(x)), base)
    tfa.enable_adapters(backbone)
    assert tfa.active_adapter(backbone) == tfa.Stack("lang", "task")
    tfa.set_active_adapter(backbone, "lang")
    np.testing.assert_allclose(np.asarray(backbone(x)), lang, atol=1e-6)
    tfa.set_active_adapter(backbone, tfa.Stack("lang", "task"))
    with pytest.raises(ValueError, match=r"Stack\('lang', 'task'\) is active"):
        tfa.merge_adapter(backbone)
    tfa.delete_adapter(backbone, "task")
    assert tfa.active_adapter(backbone) == "lang"
    np.testing.assert_allclose(np.asarray(backbone(x)), lang, atol=1e-6)


def _prompted():
    backbone = _adapted(
        {
            "a": tfa.LoraConfig(rank=2),
            "b": tfa.LoraConfig(rank=2),
            "d": tfa.LoraConfig(rank=2, use_dora=True),
            "p": tfa.PromptTuningConfig(num_virtual_tokens=2),
        }
    )
    tfa.set_active_adapter(backbone, "a")
    return backbone


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((tfa.Stack("a", "zz"),), {}, ValueError, "No adapter named 'zz'"),
        ((tfa.Stack("a", "p"),), {}, ValueError, "'p' cannot be used.*prompt"),
        ((tfa.Parallel("a", "d"),), {}, ValueError, "'d'.*DoRA"),
        (
            (tfa.Stack("a", "b"),),
            dict(trainable=["p"]),
            ValueError,
            r"`trainable` names \['p'\]",
        ),
        ((tfa.Stack("a", "b"),), dict(trainable="a"), TypeError, "list"),
        (("a",), dict(trainable=["a"]), ValueError, "compositions only"),
        ((["a", "d"],), {}, TypeError, "tfa.Stack"),
    ],
)
def test_bad_compositions_are_refused_leaving_the_model(
    args, kwargs, error, match
):
    backbone = _prompted()
    x = tiny_models.inputs()
    before = np.asarray(backbone(x))
    trainable = [v.path for v in backbone.trainable_weights]
    with pytest.raises(error, match=match):
        tfa.set_active_adapter(backbone, *args, **kwargs)
    assert tfa.active_adapter(backbone) == "a"
    assert [v.path for v in backbone.trainable_weights] == trainable
    np.testing.assert_array_equal(np.asarray(backbone(x)), before)


def test_a_merged_adapter_cannot_be_composed():
    backbone = _adapted(
        {"a": tfa.LoraConfig(rank=2), "b": tfa.LoraConfig(rank=2)}
    )
    tfa.merge_adapter(backbone)
    with pytest.raises(ValueError, match="'b' cannot be used.*merged"):
        tfa.set_active_adapter(backbone, tfa.Stack("a", "b"))
    assert tfa.active_adapter(backbone) == "b"


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: tfa.Stack("a"), ValueError, "at least two"),
        (lambda: tfa.Stack("a", "a"), ValueError, "twice"),
        (lambda: tfa.Stack("a", tfa.Stack("b", "c")), TypeError, "nesting"),
        (lambda: tfa.Stack("a", "b c"), ValueError, "`name`"),
        (lambda: tfa.Parallel("a", "b", weights=[1]), ValueError, "one"),
        (
            lambda: tfa.Parallel("a", "b", weights=[1, float("nan")]),
            ValueError,
            r"weights\[1\]",
        ),
        (
            lambda: tfa.Parallel("a", "b", weights=[1, "x"]),
            TypeError,
            r"weights\[1\]",
        ),
        (
            lambda: Composition.from_config({"kind": "fuse"}),
            ValueError,
            "Unknown adapter composition",
        ),
    ],
)
def test_bad_composition_blocks(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_composition_configs_round_trip():
    for comp in (
        tfa.Stack("a", "b", "c"),
        tfa.Parallel("a", "b"),
        tfa.Parallel(["a", "b"], weights=[0.25, 4]),
    ):
        assert Composition.from_config(comp.to_config()) == comp
    assert Composition.from_config("a") == "a"
    assert tfa.Stack("a", "b") != tfa.Parallel("a", "b")
