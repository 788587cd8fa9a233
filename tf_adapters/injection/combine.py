"""PEFT's rules for combining LoRA updates, in numpy.

The rules of `peft.utils.merge_utils` (task arithmetic, TIES, DARE and
magnitude pruning) on float64 arrays, and the truncated SVD that turns a
combined update back into LoRA factors. `add_weighted_adapter` applies them
layer by layer.

Example:
>>> import numpy as np
>>> from tf_adapters.injection.combine import combine
>>> tensors = [np.array([1.0, -2.0, 3.0]), np.array([-1.0, -1.0, 1.0])]
>>> combine("linear", tensors, [1.0, 2.0]).tolist()
[-1.0, -4.0, 5.0]
>>> combine("ties", tensors, [1.0, 1.0], density=1.0).tolist()
[1.0, -1.5, 2.0]
"""

import numpy as np

# rule -> (how each tensor is pruned first, whether signs are elected)
RULES = {
    "linear": (None, False),
    "ties": ("magnitude", True),
    "magnitude_prune": ("magnitude", False),
    "dare_linear": ("random", False),
    "dare_ties": ("random", True),
}
SIGN_METHODS = ("total", "frequency")


def combine(
    rule,
    tensors,
    weights,
    density=None,
    majority_sign_method="total",
    rng=None,
):
    """One tensor from equally shaped `tensors` and one weight per tensor.

    Args:
        rule: str. A key of `RULES`.
        tensors: list of numpy arrays, all of one shape.
        weights: list of float, one per tensor.
        density: float. Fraction of each tensor's entries kept by pruning
            rules, in `(0, 1]`.
        majority_sign_method: str. `"total"` (sign of the sum) or
            `"frequency"` (most frequent sign) elects TIES's sign.
        rng: `numpy.random.Generator`. Draws DARE's masks, one
            `rng.random(tensor.shape) < density` per tensor, in order.

    Returns:
        A numpy array of the tensors' shape.
    """
    pruning, elect_sign = RULES[rule]
    if pruning == "magnitude":
        tensors = [keep_largest(t, density) for t in tensors]
    elif pruning == "random":
        tensors = [drop_at_random(t, density, rng) for t in tensors]
    stacked = np.stack(tensors)
    weights = np.reshape(weights, (-1,) + (1,) * (stacked.ndim - 1))
    weighted = stacked * weights
    if not elect_sign:
        return weighted.sum(axis=0)
    # TIES's disjoint mean: entries that agree with the elected sign,
    # averaged over how many agree (the sign is elected before weighting).
    agree = majority_sign_mask(stacked, majority_sign_method)
    return (weighted * agree).sum(axis=0) / np.maximum(agree.sum(axis=0), 1)


def keep_largest(tensor, density):
    """`tensor` with all but its `int(density · size)` largest magnitudes
    set to zero (TIES's trim step)."""
    flat = tensor.ravel()
    keep = np.argsort(-np.abs(flat), kind="stable")[: int(density * flat.size)]
    pruned = np.zeros_like(flat)
    pruned[keep] = flat[keep]
    return pruned.reshape(tensor.shape)


def drop_at_random(tensor, density, rng):
    """DARE: each entry kept with probability `density`, then rescaled by
    `1 / density` to keep the expected value."""
    return tensor * (rng.random(tensor.shape) < density) / density


def majority_sign_mask(stacked, method):
    """Where each of the stacked tensors has the elected sign."""
    sign = np.sign(stacked)
    total = stacked.sum(axis=0) if method == "total" else sign.sum(axis=0)
    return sign == np.where(total >= 0, 1.0, -1.0)


def low_rank_factors(delta, rank, clamp=None, full_matrices=True):
    """LoRA factors `(a, b)` of the best rank-`rank` approximation of
    `delta`, as PEFT's SVD combinations compute them.

    Args:
        delta: numpy array `(inputs, outputs)`.
        rank: int. Columns of `a` and rows of `b`; zero-padded where
            `delta` has fewer singular values.
        clamp: float. Quantile in `[0, 1]` of the factors' entries beyond
            which (in absolute value) entries are clipped. Defaults to
            `None`: no clipping.
        full_matrices: bool. Passed to `numpy.linalg.svd`; the result does
            not depend on it.

    Returns:
        `(a, b)` of shapes `(inputs, rank)` and `(rank, outputs)`.
    """
    # PEFT factors the torch weight (outputs, inputs): U·S becomes B and Vh
    # becomes A. Factoring the transpose the same way clips the same values.
    u, s, vh = np.linalg.svd(delta.T, full_matrices=full_matrices)
    kept = min(rank, s.size)
    up = u[:, :kept] * s[:kept]  # (outputs, kept)
    down = vh[:kept]  # (kept, inputs)
    if clamp is not None:
        high = np.quantile(np.concatenate([up.ravel(), down.ravel()]), clamp)
        up = np.clip(up, -high, high)
        down = np.clip(down, -high, high)
    return pad_rank(down.T, up.T, rank)


def pad_rank(a, b, rank):
    """`a (inputs, r)` and `b (r, outputs)` zero-padded to rank `rank`;
    the product is unchanged."""
    extra = rank - a.shape[1]
    return np.pad(a, ((0, 0), (0, extra))), np.pad(b, ((0, extra), (0, 0)))
