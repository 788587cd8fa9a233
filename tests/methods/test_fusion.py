"""AdapterFusion: the mixing attention against hand-computed outputs, what
trains, saving and loading, the mixing weights, and the refusals."""

import keras
import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.injection.lifecycle import adapter_variables

CONFIGS = {
    "pfeiffer": lambda: tfa.BottleneckConfig(variant="pfeiffer"),
    "lora": lambda: tfa.LoraConfig(rank=2, alpha=4),
}


def _trained(kind, names=("a", "b"), family="gpt2", model=None):
    """A tiny model with adapters `names` of one kind, randomized as if
    trained."""
    model = model or tiny_models.backbone(family)
    for i, name in enumerate(names):
        tfa.add_adapter(model, CONFIGS[kind](), name=name)
        tiny_models.randomize_adapter(model, seed=i + 1)
    return model


def _outputs(model, active, x):
    tfa.set_active_adapter(model, active)
    return np.asarray(model(x))


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_fusion_of_one_adapter_is_that_adapter(kind):
    backbone = _trained(kind)
    x = tiny_models.inputs()
    alone = _outputs(backbone, "b", x)
    tfa.add_fusion(backbone, ["b"], name="f", init_std=0.5)
    tiny_models.randomize_adapter(backbone, seed=7)  # queries and keys too
    for slot in iter_slots(backbone):  # values back to the identity
        for w in slot.wrappers():
            if w.adapter_name == "f":
                kernel, bias = w._value
                size = int(np.prod(bias.shape))
                kernel.assign(np.eye(size).reshape(kernel.shape))
                bias.assign(np.zeros(bias.shape))
    np.testing.assert_allclose(np.asarray(backbone(x)), alone, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_equal_attention_averages_the_adapters(kind):
    backbone = _trained(kind, family="llama")
    x = tiny_models.inputs()
    tfa.set_active_adapter(backbone, tfa.Parallel("a", "b", weights=[0.5, 0.5]))
    mean = np.asarray(backbone(x))
    # Zero queries and keys: equal scores, so p = 1/2 for each adapter.
    tfa.add_fusion(backbone, ["a", "b"], name="f", init_std=0.0)
    np.testing.assert_allclose(np.asarray(backbone(x)), mean, atol=1e-5)
    weights = tfa.fusion_weights(backbone, x)
    assert weights and all(w == {"a": 0.5, "b": 0.5} for w in weights.values())


def test_the_attention_follows_the_query_and_keys():
    backbone = _trained("pfeiffer")
    x = tiny_models.inputs()
    tfa.add_fusion(backbone, ["a", "b"], name="f")
    tiny_models.randomize_adapter(backbone, seed=5)  # as if trained
    weights = tfa.fusion_weights(backbone, x)
    ffn = "transformer_layer_0/feedforward_output_dense"
    assert set(weights) == {ffn, ffn.replace("_0", "_1")}
    for mix in weights.values():
        assert abs(sum(mix.values()) - 1) < 1e-5
        assert abs(mix["a"] - 0.5) > 1e-4  # not the uniform start
    # By hand on one layer: softmax of q(y)·k(Δ_j), then y + Σ p_j v(Δ_j).
    slot = next(s for s in iter_slots(backbone) if s.path == ffn)
    chain = {w.adapter_name: w for w in slot.wrappers()}
    h = np.random.default_rng(0).normal(size=(2, 3, 16)).astype("float32")
    y = np.asarray(slot.base(h))
    deltas = [
        np.asarray(chain[n].scaling * chain[n].block(y)) for n in ("a", "b")
    ]
    fusion = chain["f"]

    def dense(part, v):
        kernel, bias = (np.asarray(t) for t in getattr(fusion, f"_{part}"))
        return v @ kernel + bias

    scores = np.stack(
        [(dense("query", y) * dense("key", d)).sum(-1) for d in deltas], -1
    )
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = y + sum(
        p[..., j : j + 1] * dense("value", d) for j, d in enumerate(deltas)
    )
    np.testing.assert_allclose(np.asarray(slot.layer(h)), want, atol=1e-5)


def test_fit_trains_only_the_fusion():
    model = _trained("pfeiffer", model=tiny_models.gpt2_causal_lm())
    tfa.add_fusion(model, ["a", "b"], name="f")
    fusion = {id(v) for v in adapter_variables(model.backbone, "f").values()}
    assert {id(v) for v in model.trainable_weights} == fusion
    before = {id(v): v.numpy() for v in model.weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(tiny_models.TRAIN_TEXT, batch_size=4, epochs=1, verbose=0)
    for v in model.weights:
        if id(v) in fusion:
            assert not np.array_equal(v.numpy(), before[id(v)]), v.path
        else:
            np.testing.assert_array_equal(v.numpy(), before[id(v)], v.path)


def test_checkpoints_keep_the_fusion_and_refuse_missing_adapters(tmp_path):
    backbone = _trained("lora")
    x = tiny_models.inputs()
    tfa.add_fusion(backbone, ["a", "b"], name="f", init_std=0.3)
    want = np.asarray(backbone(x))
    for name in ("a", "b", "f"):
        tfa.save_adapter(backbone, str(tmp_path / name), name=name)

    fresh = tiny_models.backbone()
    tfa.load_adapter(fresh, str(tmp_path / "a"), name="a")
    before = np.asarray(fresh(x))
    with pytest.raises(ValueError, match=r"\['b'\] is not on the model"):
        tfa.load_adapter(fresh, str(tmp_path / "f"), name="f")
    assert tfa.list_adapters(fresh) == ["a"]
    np.testing.assert_array_equal(np.asarray(fresh(x)), before)

    tfa.load_adapter(fresh, str(tmp_path / "b"), name="b")
    tfa.load_adapter(fresh, str(tmp_path / "f"), name="f")
    assert tfa.active_adapter(fresh) == "f"
    np.testing.assert_allclose(np.asarray(fresh(x)), want, atol=1e-6)


def test_keras_file_keeps_the_active_fusion(tmp_path):
    backbone = _trained("pfeiffer")
    x = tiny_models.inputs()
    tfa.add_fusion(backbone, ["a", "b"], name="f", init_std=0.3)
    want = np.asarray(backbone(x))
    path = str(tmp_path / "m.keras")
    tfa.save_model(backbone, path)
    loaded = keras.saving.load_model(path)
    assert tfa.active_adapter(loaded) == "f"
    np.testing.assert_allclose(np.asarray(loaded(x)), want, atol=1e-6)
    assert len(loaded.trainable_weights) == len(backbone.trainable_weights)


def _mixed():
    backbone = _trained("pfeiffer")
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="lora")
    tfa.add_adapter(
        backbone, tfa.PromptTuningConfig(num_virtual_tokens=2), name="p"
    )
    tfa.add_fusion(backbone, ["a", "b"], name="f")
    tfa.set_active_adapter(backbone, "a")
    return backbone


@pytest.mark.parametrize(
    "adapters, options, error, match",
    [
        (["a", "zz"], {}, ValueError, r"\['zz'\] is not on the model"),
        (["a", "lora"], {}, ValueError, "'a' adapts .* 'lora' adapts"),
        (["a", "p"], {}, ValueError, "'p' cannot be used.*prompt_tuning"),
        (["a", "f"], {}, ValueError, "'f' cannot be used.*fusion"),
        ([], {}, ValueError, "at least one"),
        ("a", {}, TypeError, "list of adapter names"),
        (["a", "a"], {}, ValueError, "twice"),
        (["a", "b"], {"temperature": 0}, ValueError, "temperature"),
        (["a", "b"], {"query": 1}, TypeError, "query"),
    ],
)
def test_bad_fusions_are_refused_leaving_the_model(
    adapters, options, error, match
):
    backbone = _mixed()
    x = tiny_models.inputs()
    before = np.asarray(backbone(x))
    with pytest.raises(error, match=match):
        tfa.add_fusion(backbone, adapters, name="g", **options)
    assert tfa.list_adapters(backbone) == ["a", "b", "lora", "p", "f"]
    assert tfa.active_adapter(backbone) == "a"
    np.testing.assert_array_equal(np.asarray(backbone(x)), before)


def test_fused_adapters_cannot_be_deleted_and_weights_need_a_fusion():
    backbone = _mixed()
    with pytest.raises(ValueError, match="'a' is mixed by fusion 'f'"):
        tfa.delete_adapter(backbone, "a")
    with pytest.raises(ValueError, match="needs an active fusion"):
        tfa.fusion_weights(backbone, tiny_models.inputs())
    tfa.delete_adapter(backbone, "f")
    tfa.delete_adapter(backbone, "a")
    assert tfa.list_adapters(backbone) == ["b", "lora", "p"]
