"""AdaLoRA's budget: PEFT's `RankAllocator.budget_schedule` and the
scoring and threshold of its `mask_to_budget`, as plain functions."""

import numpy as np
from keras import ops


def budget_schedule(
    step, init_budget, target_budget, tinit, tfinal, total_step, delta_t
):
    """`(budget, mask now)` at `step` (0-based), PEFT's cubic schedule.

    The budget (triplets kept in all) stays `init_budget` up to step
    `tinit`, then falls as `(init − target) · (1 − progress)³ + target`
    (rounded down) until step `total_step − tfinal`, with a masking every
    `delta_t` steps; past it, it is `target_budget`.

    Example:
    >>> from tf_adapters.methods.adalora.allocator import budget_schedule
    >>> [budget_schedule(s, 24, 8, 2, 2, 12, 1)[0] for s in (2, 3, 10, 11)]
    [24, 18, 8, 8]
    """
    if step <= tinit:
        return init_budget, False
    if step > total_step - tfinal:
        return target_budget, True
    mul_coeff = 1 - (step - tinit) / (total_step - tfinal - tinit)
    budget = int((init_budget - target_budget) * (mul_coeff**3) + target_budget)
    return budget, step % delta_t == 0


def triplet_scores(score_a, score_e, score_b):
    """One score per triplet, `(rank,)`: that of its singular value plus
    the mean score of its `Q` row and its `P` column (PEFT's
    `_combine_ipt`). `score_a` is shaped like `lora_a` `(in..., rank)`,
    `score_b` like `lora_b` `(rank, out...)`."""
    rank = score_e.shape[0]
    a = ops.mean(ops.reshape(score_a, (-1, rank)), axis=0)
    b = ops.mean(ops.reshape(score_b, (rank, -1)), axis=1)
    return ops.convert_to_numpy(score_e + (a + b))


def keep_masks(scores, init_budget, budget):
    """Which triplets stay, per layer: PEFT masks every triplet whose score
    is at most the `(init_budget − budget)`-th smallest of all layers'
    (ties included); nothing when the budget is the whole.

    Example:
    >>> import numpy as np
    >>> from tf_adapters.methods.adalora.allocator import keep_masks
    >>> scores = [np.array([0.5, 0.1]), np.array([0.3, 0.9, 0.2])]
    >>> [m.tolist() for m in keep_masks(scores, 5, 3)]
    [[True, False], [True, True, False]]
    """
    count = init_budget - budget
    if count <= 0:
        return [np.ones(len(s), bool) for s in scores]
    threshold = np.sort(np.concatenate(scores))[count - 1]
    return [s > threshold for s in scores]
