"""AdaLoRA on tiny GPT-2 and Llama models: the identity at the start, the
orthogonality penalty, the budget schedule during `fit`, masks, merging,
checkpoints with only the kept triplets, `.keras` files, the `finetune`
job, and the errors. (Its rank allocator against PEFT's:
tests/interop/test_adalora_peft.py.)"""

import json
import math
import os
import types

import keras
import keras_hub
import numpy as np
import pytest
import tiny_models
from layer_test_case import run_adapter_layer_test

import tf_adapters as tfa
from tf_adapters.injection.lifecycle import adapter_layers
from tf_adapters.methods import registry
from tf_adapters.methods.adalora import AdaLoraCallback
from tf_adapters.methods.adalora import AdaLoraConfig
from tf_adapters.methods.adalora import AdaLoraLayer

CAUSAL_LMS = {
    "gpt2": keras_hub.models.GPT2CausalLM,
    "llama": keras_hub.models.LlamaCausalLM,
}
# 8 steps: warm-up to step 2, budget phase, final mask at step 6.
STEPS, TINIT, TFINAL, INIT_RANK, TARGET_RANK = 8, 2, 2, 4, 2


def _causal_lm(family, seed=0):
    backbone = tiny_models.backbone(family, seed=seed)
    return CAUSAL_LMS[family](backbone=backbone, preprocessor=None)


def _inputs():
    return tiny_models.inputs(batch=4, length=8, seed=3)


def _logits(model, x):
    return np.asarray(model(x, training=False))


def _expected_budget(step, init, target, total):
    """The paper's cubic schedule (eq. 12), rounded down as PEFT does."""
    if step <= TINIT:
        return init
    if step >= total - TFINAL:
        return target
    progress = (step - TINIT) / (total - TFINAL - TINIT)
    return math.floor(target + (init - target) * (1 - progress) ** 3)


class RankRecorder(keras.callbacks.Callback):
    def __init__(self, adalora):
        super().__init__()
        self.adalora, self.totals = adalora, []

    def on_train_batch_end(self, batch, logs=None):
        self.totals.append(sum(self.adalora.ranks().values()))


@pytest.fixture(scope="module")
def trained():
    """A tiny GPT-2 trained `STEPS` steps with AdaLoRA (one step an
    epoch, so the schedule's length comes from `fit`)."""
    model = _causal_lm("gpt2")
    config = AdaLoraConfig(
        init_rank=INIT_RANK,
        target_rank=TARGET_RANK,
        tinit=TINIT,
        tfinal=TFINAL,
    )
    tfa.add_adapter(model, config, name="task")
    adapter_ids = {
        id(v)
        for layer in adapter_layers(model.backbone)
        for v in [*layer.adapter_variables().values(), layer.rank_mask]
    }
    frozen = [(v, v.numpy()) for v in model.weights if id(v) not in adapter_ids]
    start = {id(v): v.numpy() for v in model.trainable_weights}
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    x = _inputs()
    y = np.random.default_rng(4).integers(0, tiny_models.VOCAB, (4, 8))
    adalora = AdaLoraCallback(config)
    recorder = RankRecorder(adalora)
    callbacks = [adalora, recorder]
    model.fit(x, y, batch_size=4, epochs=STEPS, verbose=0, callbacks=callbacks)
    return types.SimpleNamespace(
        model=model,
        adalora=adalora,
        totals=recorder.totals,
        frozen=frozen,
        start=start,
        x=x,
    )


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_a_fresh_adapter_is_the_identity(family):
    model = _causal_lm(family)
    x = _inputs()
    before = _logits(model, x)
    config = AdaLoraConfig(target_layers="all-linear")
    tfa.add_adapter(model, config)
    layers = adapter_layers(model.backbone)
    assert layers and all(isinstance(a, AdaLoraLayer) for a in layers)
    np.testing.assert_array_equal(_logits(model, x), before)


@pytest.mark.parametrize("einsum", [False, True])
def test_layer_config_fit_step_and_keras_file(einsum, tmp_path):
    def make(dtype):
        if einsum:  # GPT-2's query: (batch, seq, hidden) → (…, heads, dim)
            base = keras.layers.EinsumDense(
                "abc,cde->abde", (None, 2, 3), bias_axes="de", dtype=dtype
            )
        else:
            base = keras.layers.Dense(6, activation="gelu", dtype=dtype)
        return AdaLoraLayer(base, "t", rank=3, alpha=8.0, orth_reg_weight=0.1)

    run_adapter_layer_test(make, (2, 3, 5), tmp=tmp_path)


def test_orthogonality_penalty_of_a_known_case():
    layer = AdaLoraLayer(
        keras.layers.Dense(2), "t", rank=2, alpha=8.0, orth_reg_weight=0.25
    )
    layer.build((None, 3))
    layer.lora_a.assign([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # Q, (in, r)
    layer.lora_b.assign([[1.0, 1.0], [0.0, 0.0]])  # P, (r, out)
    # QᵀQ − I = diag(0, 3): norm 3.  PPᵀ − I = diag(1, −1): norm √2.
    expected = 0.25 * (3.0 + math.sqrt(2.0))
    assert sorted(float(v) for v in layer.losses) == pytest.approx(
        [0.25 * math.sqrt(2.0), 0.75]
    )
    # `evaluate` (and `fit`) add it to the loss.
    model = keras.Sequential([keras.Input((3,)), layer])
    model.compile(loss="mse")
    x = np.ones((2, 3), "float32")
    target = np.zeros((2, 2), "float32")
    mse = float(np.mean(np.square(np.asarray(model(x)))))
    loss = model.evaluate(x, target, verbose=0)
    assert loss == pytest.approx(mse + expected, rel=1e-6)


def test_the_planner_averages_the_penalty_over_every_matrix():
    backbone = tiny_models.backbone("gpt2")
    tfa.add_adapter(backbone, AdaLoraConfig(orth_reg_weight=0.5))
    layers = adapter_layers(backbone)
    assert len(layers) == 4  # query and value of 2 layers: 8 matrices
    norms = []
    for layer in layers:
        q = layer.lora_a.numpy().reshape(-1, layer.rank)
        p = layer.lora_b.numpy().reshape(layer.rank, -1)
        eye = np.eye(layer.rank)
        norms += [np.linalg.norm(q.T @ q - eye), np.linalg.norm(p @ p.T - eye)]
    total = sum(float(v) for v in backbone.losses)
    assert total == pytest.approx(0.5 * np.mean(norms), rel=1e-5)


def test_budget_follows_the_cubic_schedule(trained):
    init, target = 4 * INIT_RANK, 4 * TARGET_RANK
    expected = [_expected_budget(s, init, target, STEPS) for s in range(STEPS)]
    assert trained.adalora.total_step == STEPS  # epochs × steps of `fit`
    assert trained.totals == expected
    mid = (TINIT + STEPS - TFINAL) // 2
    assert trained.totals[TINIT] == init
    assert target < trained.totals[mid] < init
    assert trained.totals[STEPS - TFINAL] == target
    ranks = trained.adalora.ranks()
    assert sum(ranks.values()) == target and len(set(ranks.values())) > 1


def test_fit_trains_only_the_adalora_variables(trained):
    for var, before in trained.frozen:
        np.testing.assert_array_equal(var.numpy(), before, err_msg=var.path)
    names = {v.path.rsplit("/", 1)[-1] for v in trained.model.trainable_weights}
    assert names == {"lora_a", "lora_e", "lora_b"}
    for layer in trained.adalora.layers:
        for var in (layer.lora_a, layer.lora_b):
            assert not np.array_equal(var.numpy(), trained.start[id(var)])
        # Kept singular values moved from 0; masked ones are 0 (PEFT).
        kept = layer.rank_mask.numpy() > 0
        assert np.all(layer.lora_e.numpy()[kept] != 0)
        assert not np.any(layer.lora_e.numpy()[~kept])


def _toy_run(splits, new_callback=False, lose_masks=False):
    """Three AdaLoRA layers trained as `fit` calls of `splits` steps each
    (one callback, or a new one for each call; with `lose_masks`, the
    masks reset between calls as a resumed run has them). Returns every
    weight and the latest statistics."""
    keras.utils.set_random_seed(0)
    layers = [
        AdaLoraLayer(
            keras.layers.Dense(6, trainable=False),
            "t",
            rank=4,
            alpha=8.0,
            orth_reg_weight=0.05,
        )
        for _ in range(3)
    ]
    model = keras.Sequential([keras.Input((6,)), *layers])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss="mse", run_eagerly=True
    )
    config = AdaLoraConfig(
        init_rank=4, target_rank=2, tinit=1, tfinal=2, total_step=8
    )
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")
    callback = AdaLoraCallback(config)
    for i, steps in enumerate(splits):
        if new_callback:
            callback = AdaLoraCallback(config)
        if lose_masks and i:
            for layer in layers:
                layer.rank_mask.assign(np.ones(4, "float32"))
        model.fit(x, -x, epochs=steps, verbose=0, callbacks=[callback])
    found = [w.numpy() for layer in layers for w in layer.weights]
    return found + [
        v.numpy() for v in callback.sensitivity.exp_avg_ipt.values()
    ]


@pytest.mark.parametrize(
    "splits, options",
    [
        ((3, 3), {}),  # ends in the budget phase (final mask at step 6)
        ((7, 1), dict(new_callback=True, lose_masks=True)),
    ],
    ids=["budget-phase", "final-phase-resumed"],
)
def test_fit_in_several_calls_allocates_as_one(splits, options):
    """A `fit` that ends in the budget phase fixes the latest allocation
    and the next one takes the budget phase up again (masked triplets may
    come back, as in PEFT); a new callback in the final phase finds the
    mask again from the zeroed singular values."""
    expected = _toy_run((sum(splits),))
    ours = _toy_run(splits, **options)
    assert len(ours) == len(expected)
    for mine, theirs in zip(ours, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)


def test_masked_triplets_have_no_effect(trained):
    model, x = trained.model, trained.x
    expected = _logits(model, x)
    layer = next(x for x in trained.adalora.layers if x.kept_rank < x.rank)
    masked = np.flatnonzero(layer.rank_mask.numpy() == 0)
    factors = (layer.lora_a, layer.lora_b, layer.lora_e)
    saved = [v.numpy() for v in factors]
    rng = np.random.default_rng(0)
    try:
        a, b, e = (s.copy() for s in saved)
        a[..., masked] += rng.normal(size=a[..., masked].shape)
        b[masked] += rng.normal(size=b[masked].shape)
        e[masked] = 5.0
        for var, value in zip(factors, (a, b, e), strict=True):
            var.assign(value)
        np.testing.assert_array_equal(_logits(model, x), expected)
        # The same change to a kept triplet does change the logits.
        kept = np.flatnonzero(layer.rank_mask.numpy() > 0)[0]
        e[kept] += 1.0
        layer.lora_e.assign(e)
        assert np.abs(_logits(model, x) - expected).max() > 1e-4
    finally:
        for var, value in zip(factors, saved, strict=True):
            var.assign(value)


def test_checkpoint_keeps_only_the_kept_triplets(trained, tmp_path):
    model, x = trained.model, trained.x
    path = str(tmp_path / "adapter")
    tfa.save_adapter(model, path)
    with open(os.path.join(path, "adapter_config.json")) as f:
        saved = json.load(f)
    ranks = saved["config"]["rank_pattern"]
    assert ranks == {
        layer.projection.path: layer.kept_rank
        for layer in trained.adalora.layers
    }
    assert sum(ranks.values()) == 4 * TARGET_RANK
    with np.load(os.path.join(path, "adapter_weights.npz")) as npz:
        for key in npz.files:
            layer_path, name = key.rsplit("/", 1)
            axis = -1 if name == "lora_a" else 0
            assert npz[key].shape[axis] == ranks[layer_path], key
    fresh = _causal_lm("gpt2")
    tfa.load_adapter(fresh, path)
    np.testing.assert_allclose(_logits(fresh, x), _logits(model, x), atol=1e-5)
    # The scale is still that of the initial rank.
    assert all(
        layer.scale == pytest.approx(8.0 / INIT_RANK, rel=1e-4)
        for layer in adapter_layers(fresh.backbone)
    )


def test_keras_file_round_trip_keeps_the_masks(trained, tmp_path):
    model, x = trained.model, trained.x
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_logits(loaded, x), _logits(model, x), atol=1e-5)
    masks = [x.rank_mask.numpy() for x in adapter_layers(loaded.backbone)]
    expected = [x.rank_mask.numpy() for x in trained.adalora.layers]
    for ours, theirs in zip(masks, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def _masked_llama():
    """A Llama with a random AdaLoRA on every projection, some triplets
    masked, one layer's all."""
    model = _causal_lm("llama")
    tfa.add_adapter(model, AdaLoraConfig(target_layers="all-linear"), "t")
    tiny_models.randomize_adapter(model)
    layers = adapter_layers(model.backbone)
    rng = np.random.default_rng(5)
    for layer in layers:
        layer.rank_mask.assign(rng.integers(0, 2, layer.rank).astype("f4"))
    layers[0].rank_mask.assign(np.zeros(layers[0].rank, "float32"))
    return model


def test_llama_checkpoint_round_trip_with_truncated_ranks(tmp_path):
    model = _masked_llama()
    x = _inputs()
    path = str(tmp_path / "adapter")
    tfa.save_adapter(model, path)
    fresh = _causal_lm("llama")
    tfa.load_adapter(fresh, path)
    ranks = [layer.rank for layer in adapter_layers(fresh.backbone)]
    kept = [layer.kept_rank for layer in adapter_layers(model.backbone)]
    assert ranks == kept and ranks[0] == 0
    np.testing.assert_allclose(_logits(fresh, x), _logits(model, x), atol=1e-5)


def test_merge_and_unmerge(tmp_path):
    model = _masked_llama()
    x = _inputs()
    expected = _logits(model, x)
    tfa.merge_adapter(model)
    np.testing.assert_allclose(_logits(model, x), expected, atol=1e-5)
    tfa.unmerge_adapter(model)
    np.testing.assert_allclose(_logits(model, x), expected, atol=1e-5)
    tfa.merge_and_unload(model)
    assert adapter_layers(model.backbone) == []
    np.testing.assert_allclose(_logits(model, x), expected, atol=1e-5)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(init_rank=4, target_rank=6), "`target_rank` must be <= init"),
        (dict(beta1=1.0), r"`beta1` must be in \[0, 1\)\. .*beta1=1.0"),
        (dict(beta2=-0.1), "`beta2` must be >= 0.0"),
        (dict(tinit=5, tfinal=5, total_step=10), "tinit=5, tfinal=5"),
        (dict(delta_t=0), "`delta_t` must be >= 1"),
        (dict(rank_pattern={"query": 20}), r"rank_pattern\['query'\]"),
    ],
)
def test_bad_options_are_refused_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        registry.make_adapter_config("adalora", options)


def test_bad_targets_and_schedules_leave_the_model_unchanged():
    model = _causal_lm("gpt2")
    x = _inputs()
    before = [v.numpy() for v in model.weights]
    with pytest.raises(ValueError, match="'nope' matches no Dense"):
        tfa.add_adapter(model, AdaLoraConfig(target_layers=["nope"]))
    assert tfa.list_adapters(model) == []
    # A schedule longer than the `fit` it runs in stops before any step.
    config = AdaLoraConfig(tinit=3, tfinal=2)
    tfa.add_adapter(model, config)
    model.compile(optimizer="adam", loss="mse", jit_compile=False)
    adapted = [v.numpy() for v in model.weights]
    y = np.zeros((4, 8, tiny_models.VOCAB))
    callbacks = [AdaLoraCallback(config)]
    with pytest.raises(ValueError, match="tinit=3, tfinal=2, total_step=4"):
        model.fit(x, y, epochs=4, verbose=0, callbacks=callbacks)
    after = [v.numpy() for v in model.weights]
    assert len(after) == len(adapted) and len(adapted) > len(before)
    for old, new in zip(adapted, after, strict=True):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(TypeError, match="AdaLoraConfig"):
        AdaLoraCallback(tfa.LoraConfig())


def test_finetune_adds_the_allocator_and_reports_ranks(tiny_preset, tmp_path):
    rows = [
        {"text": f" airplane at airport{' !' * i}", "label": "air"}
        if i % 2
        else {"text": f" the plane{' !' * i}", "label": "plane"}
        for i in range(16)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    config = tfa.FinetuneConfig(
        model=tiny_preset,
        data=str(data),
        labels=["air", "plane"],
        template="{text} is",
        method="adalora",
        adapter={"init_rank": 4, "target_rank": 2},
        steps=4,
        batch_size=4,
        sequence_length=12,
        test_size=4,
        jit_compile=False,
        evaluate_base=False,
        export=False,
        output=str(tmp_path / "run"),
    )
    report = tfa.run_finetune(config)
    ranks = report["adalora_ranks"]
    assert len(ranks) == 4 and sum(ranks.values()) == 4 * 2
    with open(tmp_path / "run" / "report.json") as f:
        assert json.load(f)["adalora_ranks"] == ranks
    saved = os.path.join(report["checkpoint"], "adapter_config.json")
    with open(saved) as f:
        assert json.load(f)["config"]["rank_pattern"] == ranks
