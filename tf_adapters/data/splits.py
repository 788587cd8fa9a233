"""Deterministic train / validation / test splits from a seed."""

import numpy as np


def split_records(records, test=0.1, validation=0.1, seed=0):
    """Shuffles `records` with `seed` and cuts them into three splits.

    Args:
        records: list. The records.
        test: float or int. Fraction (< 1) or count (>= 1) for the test split.
        validation: float or int. The same for the validation split.
        seed: int. The same seed always gives the same splits.

    Returns:
        dict with `"train"`, `"validation"` and `"test"` lists.

    Example:
    >>> from tf_adapters.data.splits import split_records
    >>> s = split_records(list(range(10)), test=2, validation=0.2, seed=1)
    >>> [len(s[k]) for k in ("train", "validation", "test")]
    [6, 2, 2]
    """
    n = len(records)
    counts = [_count("test", test, n), _count("validation", validation, n)]
    if sum(counts) >= n:
        raise ValueError(
            f"test ({counts[0]}) and validation ({counts[1]}) leave no "
            f"training records out of {n}; ask for smaller splits."
        )
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [records[i] for i in order]
    return {
        "test": shuffled[: counts[0]],
        "validation": shuffled[counts[0] : counts[0] + counts[1]],
        "train": shuffled[counts[0] + counts[1] :],
    }


def _count(name, value, n):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number. Received: {value!r}.")
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}.")
    return int(round(value * n)) if value < 1 else int(value)
