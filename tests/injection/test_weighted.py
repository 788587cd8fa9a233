"""`add_weighted_adapter`: PEFT's combinations of LoRA adapters, checked
against PEFT itself and against plain numpy versions of the rules."""

import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.core.layer_paths import PROJECTIONS
from tf_adapters.core.layer_paths import iter_slots

TARGETS = [
    "query",
    "value",
    "attention_output",
    "feedforward_intermediate_dense",
]
# name -> (rank, alpha); "a" and "c" share a rank, "b" does not.
ADAPTERS = {"a": (2, 4.0), "b": (3, 1.5), "c": (2, 3.0)}
WEIGHTS = [0.7, -0.4]


@pytest.fixture(scope="module")
def shared():
    backbone = tiny_models.backbone()
    for seed, (name, (rank, alpha)) in enumerate(ADAPTERS.items(), start=1):
        config = tfa.LoraConfig(rank=rank, alpha=alpha, target_layers=TARGETS)
        tfa.add_adapter(backbone, config, name=name)
        tiny_models.randomize_adapter(backbone, seed=seed)
    return backbone


@pytest.fixture()
def backbone(shared):
    """The shared model; adapters a test adds are deleted afterwards."""
    yield shared
    tfa.unmerge_adapter(shared)
    for name in tfa.list_adapters(shared):
        if name not in ADAPTERS:
            tfa.delete_adapter(shared, name)
    tfa.set_active_adapter(shared, "c")


def lora_layers(backbone, name):
    """`{path: LoraLayer}` of adapter `name`, in model order."""
    return {
        slot.path: layer
        for slot in iter_slots(backbone)
        for layer in slot.wrappers()
        if layer.adapter_name == name
    }


def factors(layer):
    """`(A, B)` as float64 `(inputs, rank)`, `(rank, outputs)` matrices."""
    a = np.asarray(layer.lora_a.numpy(), np.float64)
    b = np.asarray(layer.lora_b.numpy(), np.float64)
    return a.reshape(-1, layer.rank), b.reshape(layer.rank, -1)


def update(layer):
    a, b = factors(layer)
    return layer.scale * a @ b


def updates(backbone, name):
    return {p: update(x) for p, x in lora_layers(backbone, name).items()}


# --- PEFT parity ------------------------------------------------------------


def peft_updates(backbone, adapters, weights, **kwargs):
    """PEFT's `add_weighted_adapter` on torch `Linear` layers holding our
    adapters' factors: `{path: (inputs, outputs) update}`."""
    peft = pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    paths = list(lora_layers(backbone, adapters[0]))
    first = [factors(x) for x in lora_layers(backbone, adapters[0]).values()]
    net = torch.nn.Module()
    net.layers = torch.nn.ModuleDict(
        {
            f"p{i}": torch.nn.Linear(a.shape[0], b.shape[1], bias=False)
            for i, (a, b) in enumerate(first)
        }
    )
    model = None
    # PEFT warns about adapter names found in its "lora_" prefix: "x" first.
    for name in dict.fromkeys(adapters):
        rank, alpha = ADAPTERS[name]
        config = peft.LoraConfig(
            r=rank, lora_alpha=alpha, target_modules=list(net.layers)
        )
        if model is None:
            model = peft.get_peft_model(net, config, adapter_name=f"x{name}")
        else:
            model.add_adapter(f"x{name}", config)
        for i, layer in enumerate(lora_layers(backbone, name).values()):
            module = net.layers[f"p{i}"]
            for weight, value in zip(
                (module.lora_A[f"x{name}"], module.lora_B[f"x{name}"]),
                factors(layer),
                strict=True,
            ):
                weight.weight.data = torch.tensor(value.T, dtype=torch.float32)
    kwargs = dict(kwargs)
    if "combination" in kwargs:  # PEFT calls it combination_type
        kwargs["combination_type"] = kwargs.pop("combination")
    model.add_weighted_adapter(
        [f"x{a}" for a in adapters], weights, "new", **kwargs
    )
    return {
        path: net.layers[f"p{i}"].get_delta_weight("new").detach().numpy().T
        for i, path in enumerate(paths)
    }


@pytest.mark.parametrize(
    "adapters, weights, kwargs",
    [
        (["a", "c"], WEIGHTS, dict(combination="linear")),
        (["a", "b"], WEIGHTS, dict(combination="cat")),
        (["a", "b", "c"], [*WEIGHTS, 1.2], dict(svd_rank=3)),
        (["b"], [-0.5], dict(combination="svd", svd_rank=2)),
        (["a", "c"], WEIGHTS, dict(combination="ties", density=0.5)),
        (
            ["a", "c", "c"],
            [*WEIGHTS, 0.3],
            dict(
                combination="ties",
                density=0.6,
                majority_sign_method="frequency",
            ),
        ),
        (
            ["a", "b"],
            WEIGHTS,
            dict(combination="ties_svd", density=0.5, svd_rank=3),
        ),
        (
            ["a", "c"],
            WEIGHTS,
            dict(combination="magnitude_prune", density=0.5),
        ),
    ],
    ids=["linear", "cat", "svd", "one", "ties", "ties_freq", "ties_svd", "mp"],
)
def test_updates_equal_peft(backbone, adapters, weights, kwargs):
    expected = peft_updates(backbone, adapters, weights, **kwargs)
    tfa.add_weighted_adapter(backbone, adapters, weights, "new", **kwargs)
    got = updates(backbone, "new")
    assert list(got) == list(expected)
    for path in got:
        np.testing.assert_allclose(
            got[path], expected[path], atol=1e-5, err_msg=path
        )


# --- The rules, written out in numpy ----------------------------------------


def trim(tensor, density):
    """TIES: keep the `int(density · size)` largest magnitudes."""
    k = int(density * tensor.size)
    threshold = np.sort(np.abs(tensor).ravel())[::-1][k - 1]
    return np.where(np.abs(tensor) >= threshold, tensor, 0.0)


def rule(name, tensors, weights, density, rng):
    """TIES (Yadav et al. 2023) and DARE (Yu et al. 2024), as PEFT applies
    them; DARE's masks drawn from `rng` one tensor after the other."""
    if name.startswith("dare"):
        tensors = [
            t * (rng.random(t.shape) < density) / density for t in tensors
        ]
    else:
        tensors = [trim(t, density) for t in tensors]
    if not name.endswith("ties"):
        return sum(w * t for w, t in zip(weights, tensors, strict=True))
    sign = np.where(sum(tensors) >= 0, 1.0, -1.0)
    agree = [np.sign(t) == sign for t in tensors]
    total = sum(
        w * t * m for w, t, m in zip(weights, tensors, agree, strict=True)
    )
    return total / np.maximum(sum(m.astype(float) for m in agree), 1.0)


def reference(backbone, combination, adapters, weights, density, seed):
    rng = np.random.default_rng(seed)
    name = combination.removesuffix("_svd")
    groups = [lora_layers(backbone, a) for a in adapters]
    found = {}
    for path in groups[0]:
        layers = [g[path] for g in groups]
        if combination.endswith("_svd"):
            deltas = [update(x) for x in layers]
            found[path] = rule(name, deltas, weights, density, rng)
            continue
        scaled = [w * x.scale for w, x in zip(weights, layers, strict=True)]
        weights_a = [np.sign(v) * np.sqrt(abs(v)) for v in scaled]
        weights_b = [np.sqrt(abs(v)) for v in scaled]
        pairs = [factors(x) for x in layers]
        a = rule(name, [p[0] for p in pairs], weights_a, density, rng)
        b = rule(name, [p[1] for p in pairs], weights_b, density, rng)
        found[path] = a @ b
    return found


@pytest.mark.parametrize(
    "combination",
    [
        "ties",
        "ties_svd",
        "dare_linear",
        "dare_linear_svd",
        "dare_ties",
        "dare_ties_svd",
    ],
)
def test_ties_and_dare_follow_the_papers_rules(backbone, combination):
    # svd_rank 8 is the full rank of every update here: the SVD is exact.
    svd = dict(svd_rank=8) if combination.endswith("_svd") else {}
    adapters, weights = ["a", "c"], [0.9, 0.6]
    tfa.add_weighted_adapter(
        backbone,
        adapters,
        weights,
        "new",
        combination=combination,
        density=0.4,
        seed=7,
        **svd,
    )
    expected = reference(backbone, combination, adapters, weights, 0.4, 7)
    got = updates(backbone, "new")
    for path in got:
        np.testing.assert_allclose(
            got[path], expected[path], atol=1e-5, err_msg=path
        )
    tfa.add_weighted_adapter(
        backbone,
        adapters,
        weights,
        "other_seed",
        combination=combination,
        density=0.4,
        seed=8,
        **svd,
    )
    differs = [
        not np.allclose(got[p], u)
        for p, u in updates(backbone, "other_seed").items()
    ]
    assert any(differs) == combination.startswith("dare")


def test_svd_clamp_clips_the_factors_at_the_quantile(backbone):
    tfa.add_weighted_adapter(backbone, ["a", "b"], WEIGHTS, "full")
    tfa.add_weighted_adapter(
        backbone, ["a", "b"], WEIGHTS, "clamped", svd_clamp=0.8
    )
    full = lora_layers(backbone, "full")
    for path, layer in lora_layers(backbone, "clamped").items():
        a, b = factors(full[path])
        high = np.quantile(np.concatenate([a.ravel(), b.ravel()]), 0.8)
        got_a, got_b = factors(layer)
        np.testing.assert_allclose(got_a, np.clip(a, -high, high), atol=1e-6)
        np.testing.assert_allclose(got_b, np.clip(b, -high, high), atol=1e-6)


# --- The new adapter in the model -------------------------------------------


def test_linear_with_weights_one_and_zero_is_the_first_adapter(backbone):
    x = tiny_models.inputs()
    tfa.set_active_adapter(backbone, "a")
    alone = np.asarray(backbone(x))
    tfa.add_weighted_adapter(
        backbone, ["a", "c"], [1.0, 0.0], "new", combination="linear"
    )
    assert tfa.active_adapter(backbone) == "a"  # PEFT does not activate it
    tfa.set_active_adapter(backbone, "new")
    np.testing.assert_allclose(np.asarray(backbone(x)), alone, atol=1e-6)


def test_output_is_the_base_plus_the_combined_update(backbone):
    weights = [0.5, -0.8]
    fresh = tiny_models.backbone()  # the same base weights
    kernels = {
        s.path: s.base.kernel
        for s in iter_slots(fresh)
        if isinstance(s.base, PROJECTIONS)
    }
    for name, w in zip(["a", "b"], weights, strict=True):
        for path, layer in lora_layers(backbone, name).items():
            kernel = kernels[path]
            kernel.assign(kernel + w * np.asarray(layer.delta()))
    tfa.add_weighted_adapter(
        backbone, ["a", "b"], weights, "new", "cat", activate=True
    )
    assert tfa.active_adapter(backbone) == "new"
    x = tiny_models.inputs()
    np.testing.assert_allclose(
        np.asarray(backbone(x)), np.asarray(fresh(x)), atol=1e-5
    )
    tfa.merge_adapter(backbone)
    np.testing.assert_allclose(
        np.asarray(backbone(x)), np.asarray(fresh(x)), atol=1e-5
    )


def test_new_config_folds_the_scales(backbone):
    tfa.add_weighted_adapter(backbone, ["a", "b"], WEIGHTS, "cat", "cat")
    tfa.add_weighted_adapter(backbone, ["a", "b"], WEIGHTS, "svd")
    tfa.add_weighted_adapter(backbone, ["a", "c"], WEIGHTS, "lin", "linear")
    configs = {
        name: tfa.LoraConfig.from_json(_config_json(backbone, name))
        for name in ("cat", "svd", "lin")
    }
    assert {n: (c.rank, c.alpha) for n, c in configs.items()} == {
        "cat": (5, 5.0),
        "svd": (3, 3.0),
        "lin": (2, 2.0),
    }
    assert all(c.target_layers == TARGETS for c in configs.values())


def _config_json(backbone, name):
    from tf_adapters.injection.lifecycle import adapter_config

    return adapter_config(backbone, name).to_json()


def test_round_trip_through_save_and_load(backbone, tmp_path):
    tfa.add_weighted_adapter(
        backbone, ["a", "b"], WEIGHTS, "new", svd_rank=2, activate=True
    )
    x = tiny_models.inputs()
    expected = np.asarray(backbone(x))
    tfa.save_adapter(backbone, tmp_path / "new")
    fresh = tfa.load_adapter(tiny_models.backbone(), tmp_path / "new")
    assert tfa.list_adapters(fresh) == ["new"]
    assert _config_json(fresh, "new") == _config_json(backbone, "new")
    np.testing.assert_allclose(np.asarray(fresh(x)), expected, atol=1e-6)
    tfa.merge_adapter(fresh)
    np.testing.assert_allclose(np.asarray(fresh(x)), expected, atol=1e-5)


# --- Errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((["a", "zz"], WEIGHTS), {}, ValueError, "No adapter named 'zz'"),
        (([], []), {}, ValueError, "at least one adapter"),
        (("a", [1.0]), {}, TypeError, "list of adapter names"),
        ((["a", "b"], [1.0]), {}, ValueError, "one weight per adapter"),
        ((["a", "b"], [1.0, np.nan]), {}, ValueError, r"weights\[1\]"),
        (
            (["a", "b"], WEIGHTS),
            dict(combination="linear"),
            ValueError,
            "Use combination='cat' or 'svd'",
        ),
        (
            (["a", "b"], WEIGHTS),
            dict(combination="mean"),
            ValueError,
            "combination",
        ),
        (
            (["a", "c"], WEIGHTS),
            dict(combination="ties"),
            ValueError,
            "needs `density`",
        ),
        (
            (["a", "c"], WEIGHTS),
            dict(combination="dare_ties", density=0.0),
            ValueError,
            "`density` must be > 0",
        ),
        (
            (["a", "c"], WEIGHTS),
            dict(combination="dare_linear", density=1.5),
            ValueError,
            "`density` must be <= 1",
        ),
        (
            (["a", "c"], WEIGHTS),
            dict(combination="linear", density=0.5),
            ValueError,
            "`density` does not apply",
        ),
        (
            (["a", "c"], WEIGHTS),
            dict(combination="cat", svd_rank=2),
            ValueError,
            "`svd_rank` does not apply",
        ),
        (
            (["a", "c"], WEIGHTS),
            dict(combination="ties", density=0.5, majority_sign_method="x"),
            ValueError,
            "majority_sign_method",
        ),
    ],
)
def test_bad_arguments_are_refused(backbone, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        tfa.add_weighted_adapter(backbone, *args, "new", **kwargs)
    assert tfa.list_adapters(backbone) == list(ADAPTERS)


def test_a_taken_name_is_refused(backbone):
    with pytest.raises(ValueError, match="'b' already exists"):
        tfa.add_weighted_adapter(backbone, ["a", "c"], WEIGHTS, "b")
    with pytest.raises(ValueError, match="`name`"):
        tfa.add_weighted_adapter(backbone, ["a", "c"], WEIGHTS, "a b")


def test_a_merged_adapter_is_refused(backbone):
    tfa.set_active_adapter(backbone, "a")
    tfa.merge_adapter(backbone)
    with pytest.raises(ValueError, match="adapter 'a' is merged"):
        tfa.add_weighted_adapter(backbone, ["a", "c"], WEIGHTS, "new")
    assert tfa.list_adapters(backbone) == list(ADAPTERS)


@pytest.fixture(scope="module")
def mixed():
    """A model with adapters that cannot be combined, and one plain LoRA."""
    backbone = tiny_models.backbone()
    adapters = {
        "plain": tfa.LoraConfig(rank=2, target_layers=TARGETS),
        "ia3": tfa.IA3Config(target_layers=["query"]),
        "shared": tfa.LoraConfig(
            rank=2, target_layers=TARGETS, share_weights=True
        ),
        "query_only": tfa.LoraConfig(rank=2, target_layers=["query"]),
        "dora": tfa.LoraConfig(rank=2, target_layers=TARGETS, use_dora=True),
        "pissa": tfa.LoraConfig(rank=2, target_layers=TARGETS, init="pissa"),
    }
    for name, config in adapters.items():
        tfa.add_adapter(backbone, config, name=name)
    return backbone


@pytest.mark.parametrize(
    "other, match",
    [
        ("ia3", "'ia3' is a 'ia3' adapter; only LoRA"),
        ("shared", "share_weights=True"),
        ("query_only", "adapt different layers"),
        ("dora", "DoRA adapter"),
        ("pissa", "init='pissa'"),
    ],
)
def test_adapters_that_cannot_combine_are_refused(mixed, other, match):
    before = tfa.list_adapters(mixed)
    with pytest.raises(ValueError, match=match):
        tfa.add_weighted_adapter(mixed, ["plain", other], [1.0, 1.0], "new")
    assert tfa.list_adapters(mixed) == before
