"""One LoRA adapter combined from several: PEFT's `add_weighted_adapter`.

The new adapter is an ordinary LoRA adapter (a `LoraConfig` and `lora_a` /
`lora_b` weights) with `alpha = rank`, so its scale is 1: every input
adapter's scale is folded into the combined factors. Layer by layer, as in
PEFT's `LoraModel.add_weighted_adapter`:

- `cat`: the factors side by side, `A = [w_i·s_i·A_i]`, `B = [B_i]`; the
  update is exactly `sum_i w_i·s_i·A_i·B_i`, of rank `sum_i r_i`.
- `linear`, `ties`, `dare_linear`, `dare_ties`, `magnitude_prune`: the rule
  (`tf_adapters.injection.combine`) applied to the `A`s and, separately, the
  `B`s, each weighted by `sqrt(|w_i·s_i|)` (the sign on `A` only). Ranks must
  be equal; `linear` is exact only for one adapter (cross terms
  `A_i·B_j` appear otherwise).
- `svd`, `ties_svd`, `dare_linear_svd`, `dare_ties_svd`,
  `magnitude_prune_svd`: the rule applied to the updates `s_i·A_i·B_i`,
  then a truncated SVD back to rank `svd_rank`.

Arithmetic is numpy float64, stored as float32. DARE's random masks come
from `numpy.random.default_rng(seed)` (PEFT uses torch's global generator,
so equal seeds do not give PEFT's masks): one `rng.random(shape) < density`
per tensor, layers in model order, per layer the `A`s then the `B`s (or the
updates), adapters in the order given, on `(inputs, rank)`, `(rank,
outputs)` and `(inputs, outputs)` matrices.
"""

import dataclasses
import logging
import math

import numpy as np

from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.state import require_state
from tf_adapters.core.validation import check_adapter_name
from tf_adapters.core.validation import check_bool
from tf_adapters.core.validation import check_choice
from tf_adapters.core.validation import check_float
from tf_adapters.core.validation import check_int
from tf_adapters.injection.api import attach_planned
from tf_adapters.injection.combine import SIGN_METHODS
from tf_adapters.injection.combine import combine
from tf_adapters.injection.combine import low_rank_factors
from tf_adapters.injection.combine import pad_rank
from tf_adapters.injection.lifecycle import split_model
from tf_adapters.methods.lora.config import LoraConfig
from tf_adapters.methods.lora.init import RESIDUAL_INITS
from tf_adapters.methods.registry import planner_for

log = logging.getLogger("tf_adapters.weighted")

# combination -> (rule of `combine`, what it combines), PEFT's names.
COMBINATIONS = {
    "svd": ("linear", "updates"),
    "linear": ("linear", "factors"),
    "cat": (None, "cat"),
    "ties": ("ties", "factors"),
    "ties_svd": ("ties", "updates"),
    "dare_ties": ("dare_ties", "factors"),
    "dare_linear": ("dare_linear", "factors"),
    "dare_ties_svd": ("dare_ties", "updates"),
    "dare_linear_svd": ("dare_linear", "updates"),
    "magnitude_prune": ("magnitude_prune", "factors"),
    "magnitude_prune_svd": ("magnitude_prune", "updates"),
}


def add_weighted_adapter(
    model,
    adapters,
    weights,
    name,
    combination="svd",
    svd_rank=None,
    svd_clamp=None,
    svd_full_matrices=True,
    density=None,
    majority_sign_method="total",
    seed=None,
    activate=False,
):
    """Adds a LoRA adapter combined from the model's trained LoRA adapters.

    PEFT's `LoraModel.add_weighted_adapter`, with its argument names and
    arithmetic (see `tf_adapters.injection.weighted` for each combination).
    The result is an ordinary LoRA adapter with `alpha = rank`: it saves,
    loads, merges and exports like any other. With one adapter the
    combination is always `"linear"` (the adapter times its weight), as in
    PEFT.

    Args:
        model: `keras_hub.models.CausalLM` or `keras_hub.models.Backbone`.
            The model holding the adapters; changed in place.
        adapters: list of str. Names of LoRA adapters on the model, all
            adapting the same layers.
        weights: list of float. One weight per adapter; negative weights
            subtract.
        name: str. The new adapter's name.
        combination: str. `"svd"`, `"linear"` (equal ranks), `"cat"`
            (rank: the sum of the ranks), `"ties"`, `"dare_linear"`,
            `"dare_ties"`, `"magnitude_prune"` (equal ranks; these combine
            the factors), or `"ties_svd"`, `"dare_linear_svd"`,
            `"dare_ties_svd"`, `"magnitude_prune_svd"` (these combine the
            updates). PEFT calls it `combination_type`. Defaults to
            `"svd"`.
        svd_rank: int. Rank of the result of SVD combinations. Defaults to
            `None`: the largest rank of the adapters.
        svd_clamp: float. For SVD combinations: quantile in `[0, 1]` of the
            factors' entries beyond which entries are clipped. Defaults to
            `None` (no clipping).
        svd_full_matrices: bool. Passed to `numpy.linalg.svd` (the result is
            the same either way). Defaults to `True`.
        density: float. Fraction of entries kept, in `(0, 1]`; needed by
            TIES, DARE and magnitude pruning and refused by the others.
            Defaults to `None`.
        majority_sign_method: str. How TIES elects each entry's sign:
            `"total"` (the sign of the sum) or `"frequency"` (the most
            common sign). Defaults to `"total"`.
        seed: int. Seeds DARE's random masks. Defaults to `None` (fresh
            randomness).
        activate: bool. Make the new adapter the active one (PEFT does
            not). Defaults to `False`.

    Returns:
        The same model object, with adapter `name` added.

    Raises:
        ValueError: for unknown or merged adapters; adapters that are not
            plain per-layer LoRA (DoRA, PiSSA/OLoRA initialization,
            `share_weights=True`) or adapt different layers; weights that
            are not one finite number per adapter; unequal ranks for
            `"linear"`-like combinations; an unknown `combination`;
            a `density` outside `(0, 1]` or given where unused; a `name`
            already taken. The model is unchanged.

    Example:
    >>> import numpy as np, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> _ = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    >>> _ = tfa.add_adapter(backbone, tfa.LoraConfig(rank=4), name="b")
    >>> backbone = tfa.add_weighted_adapter(
    ...     backbone, ["a", "b"], [0.5, 0.5], "ab", combination="cat")
    >>> tfa.list_adapters(backbone), tfa.active_adapter(backbone)
    (['a', 'b', 'ab'], 'b')
    """
    backbone, task = split_model(model)
    state = require_state(backbone)
    weights = _check_arguments(
        state, adapters, weights, name, combination, activate
    )
    _check_options(
        combination,
        svd_rank,
        svd_clamp,
        svd_full_matrices,
        density,
        majority_sign_method,
        seed,
    )
    configs = [state.adapters[a].config for a in adapters]
    for adapter, config in zip(adapters, configs, strict=True):
        _check_plain_lora(adapter, config)
    state.check_nothing_merged("add a weighted adapter")
    layers = _layers_by_path(backbone, adapters)
    if len(adapters) == 1:
        combination = "linear"
    rank = _new_rank(combination, adapters, layers, svd_rank)
    options = dict(
        density=density,
        majority_sign_method=majority_sign_method,
        rng=np.random.default_rng(seed),
    )
    svd = dict(clamp=svd_clamp, full_matrices=svd_full_matrices)
    factors = {
        path: _combine_layer(combination, group, weights, rank, options, svd)
        for path, group in layers.items()
    }
    config = dataclasses.replace(
        configs[0],
        rank=rank,
        alpha=float(rank),
        use_rslora=False,
        rank_pattern=None,
        alpha_pattern=None,
    )
    _attach(backbone, task, config, name, factors, activate)
    log.info(
        "Adapter %r: %s of %s, rank %d.", name, combination, adapters, rank
    )
    return model


def _check_arguments(state, adapters, weights, name, combination, activate):
    """Checks the adapters, weights, name and combination; returns the
    weights as floats."""
    check_adapter_name(name)
    if name in state.adapters:
        raise ValueError(
            f"An adapter named {name!r} already exists; pick another `name` "
            "or `delete_adapter` it first."
        )
    if not isinstance(adapters, (list, tuple)) or not all(
        isinstance(a, str) for a in adapters
    ):
        raise TypeError(
            "`adapters` must be a list of adapter names. "
            f"Received: adapters={adapters!r}."
        )
    if not adapters:
        raise ValueError(
            "`adapters` must name at least one adapter to combine. "
            f"Adapters: {list(state.adapters)}."
        )
    for adapter in adapters:
        state.check_known(adapter)
    if isinstance(weights, np.ndarray):
        weights = weights.tolist()
    if not isinstance(weights, (list, tuple)) or len(weights) != len(adapters):
        raise ValueError(
            "`weights` must hold one weight per adapter "
            f"({len(adapters)}). Received: weights={weights!r}."
        )
    check_choice("combination", combination, COMBINATIONS)
    check_bool("activate", activate)
    return [
        check_float(f"weights[{i}]", w.item() if hasattr(w, "item") else w)
        for i, w in enumerate(weights)
    ]


def _check_options(
    combination, svd_rank, clamp, full_matrices, density, sign_method, seed
):
    """Checks the options of `combination`; refuses those it ignores."""
    rule, level = COMBINATIONS[combination]
    needs_density = rule not in (None, "linear")
    for option, value, used in (
        ("density", density, needs_density),
        ("svd_rank", svd_rank, level == "updates"),
        ("svd_clamp", clamp, level == "updates"),
    ):
        if value is not None and not used:
            raise ValueError(
                f"`{option}` does not apply to combination="
                f"{combination!r}. Received: {option}={value!r}."
            )
    if needs_density:
        if density is None:
            raise ValueError(
                f"combination={combination!r} needs `density`, the "
                "fraction of entries kept, in (0, 1]."
            )
        check_float("density", density, 0.0, 1.0, strict_min=True)
    if svd_rank is not None:
        check_int("svd_rank", svd_rank, minimum=1)
    if clamp is not None:
        check_float("svd_clamp", clamp, 0.0, 1.0)
    check_bool("svd_full_matrices", full_matrices)
    check_choice("majority_sign_method", sign_method, SIGN_METHODS)
    if seed is not None:
        check_int("seed", seed, minimum=0)


def _check_plain_lora(adapter, config):
    """Refuses adapters whose update is not `scale·A·B` on its own."""
    if not isinstance(config, LoraConfig):
        raise ValueError(
            f"Adapter {adapter!r} is a {config.method!r} adapter; only LoRA "
            "adapters can be combined: leave it out of `adapters`."
        )
    reason = None
    if getattr(config, "use_dora", False):
        reason = (
            "is a DoRA adapter (use_dora=True): its magnitude vector rescales "
            "the whole kernel, so its update is no low-rank term to add up; "
            "combine plain LoRA adapters (use_dora=False)"
        )
    elif getattr(config, "init", "default") in RESIDUAL_INITS:
        reason = (
            f"starts from the base kernel (init={config.init!r}) and "
            "subtracts that starting product A0·B0, so its update is not "
            "scale·A·B; combine adapters with init='default' or 'gaussian'"
        )
    elif config.share_weights:
        reason = (
            "shares one A, B pair across transformer layers "
            "(share_weights=True); only per-layer adapters "
            "(share_weights=False) can be combined"
        )
    if reason:
        raise ValueError(f"Adapter {adapter!r} {reason}.")


def _layers_by_path(backbone, adapters):
    """`{path: [LoRA layer of each adapter]}`, in model order; raises if
    the adapters adapt different layers."""
    found = {a: {} for a in adapters}
    for slot in iter_slots(backbone):
        for layer in slot.wrappers():
            if layer.adapter_name in found:
                found[layer.adapter_name][slot.path] = layer
    paths = list(found[adapters[0]])
    for adapter in adapters[1:]:
        differ = sorted(set(paths) ^ set(found[adapter]))
        if differ:
            raise ValueError(
                f"Adapters {adapters[0]!r} and {adapter!r} adapt different "
                f"layers (e.g. {differ[0]!r} has only one of them); only "
                "adapters on the same layers can be combined."
            )
    return {p: [found[a][p] for a in adapters] for p in paths}


def _new_rank(combination, adapters, layers, svd_rank):
    """The combined adapter's rank, PEFT's rule: the sum of the adapters'
    ranks for `cat`, `svd_rank` or the largest for SVD combinations, the
    common rank otherwise."""
    ranks = [
        max(group[i].rank for group in layers.values())
        for i in range(len(adapters))
    ]
    if combination == "cat":
        return sum(ranks)
    if COMBINATIONS[combination][1] == "updates":
        return svd_rank or max(ranks)
    for path, group in layers.items():
        if len({x.rank for x in group}) > 1:
            raise ValueError(
                f"combination={combination!r} needs adapters of one "
                f"rank, but at {path!r} the ranks are "
                f"{dict(zip(adapters, [x.rank for x in group], strict=True))}"
                ". Use combination='cat' or 'svd'."
            )
    return ranks[0]


def _factors(layer):
    """`(A, B)` of a LoRA layer as float64 `(inputs, r)`, `(r, outputs)`."""
    a = np.asarray(layer.lora_a.numpy(), np.float64)
    b = np.asarray(layer.lora_b.numpy(), np.float64)
    return a.reshape(-1, layer.rank), b.reshape(layer.rank, -1)


def _update(layer):
    """`scale·A·B` as a float64 `(inputs, outputs)` matrix."""
    a, b = _factors(layer)
    return layer.scale * (a @ b)


def _combine_layer(combination, group, weights, rank, options, svd):
    """`(A, B)` of the combined adapter at one layer, `(inputs, rank)` and
    `(rank, outputs)`."""
    rule, level = COMBINATIONS[combination]
    if level == "cat":
        return _cat(group, weights, rank)
    if level == "factors":
        return _combine_factors(rule, group, weights, rank, options)
    delta = combine(rule, [_update(x) for x in group], weights, **options)
    return low_rank_factors(delta, rank, **svd)


def _cat(group, weights, rank):
    pairs = [_factors(x) for x in group]
    scales = [w * x.scale for w, x in zip(weights, group, strict=True)]
    a = np.concatenate(
        [s * p[0] for s, p in zip(scales, pairs, strict=True)], axis=1
    )
    b = np.concatenate([p[1] for p in pairs], axis=0)
    return pad_rank(a, b, rank)


def _combine_factors(rule, group, weights, rank, options):
    # sqrt(|w·s|) on both sides and the sign on A only, so that a negative
    # weight flips the update instead of cancelling out.
    scaled = [w * x.scale for w, x in zip(weights, group, strict=True)]
    weights_b = [math.sqrt(abs(v)) for v in scaled]
    weights_a = [
        m if v >= 0 else -m for m, v in zip(weights_b, scaled, strict=True)
    ]
    pairs = [_factors(x) for x in group]
    a = combine(rule, [p[0] for p in pairs], weights_a, **options)
    b = combine(rule, [p[1] for p in pairs], weights_b, **options)
    return pad_rank(a, b, rank)


def _attach(backbone, task, config, name, factors, activate):
    """Plans the new adapter on the adapters' layers, then attaches it and
    assigns its factors."""
    plan = planner_for(config)(backbone, config, name)
    planned = {slot.path: layer for slot, layer in plan.wraps}
    if set(planned) != set(factors):
        raise ValueError(
            f"The combined adapter's config {config} selects other layers "
            "than the adapters it combines; combine adapters added with the "
            "same `target_layers`."
        )
    attach_planned(backbone, task, plan, activate)
    for path, (a, b) in factors.items():
        layer = planned[path]
        layer.lora_a.assign(a.reshape(layer.lora_a.shape).astype("float32"))
        layer.lora_b.assign(b.reshape(layer.lora_b.shape).astype("float32"))
