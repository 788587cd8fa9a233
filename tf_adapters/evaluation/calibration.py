"""Calibrating a classifier's label bias on held-out examples.

A short fine-tuning run can end leaning to one class: its last batches
happened to hold more of it, and the label words' logits kept the tilt.
One bias per label, fitted after training on training examples the run
never trained on, takes the tilt out without touching the test split:
the biases that maximize those examples' likelihood (Platt scaling with
the slope fixed at 1, so only the decision threshold moves).
"""

import numpy as np


def fit_label_bias(logits, labels, iterations=100):
    """The per-label bias `b` that minimizes the mean cross-entropy of
    `softmax(logits + b)` against `labels` (convex; damped Newton steps),
    centred to sum to zero.

    Args:
        logits: array of shape `(examples, labels)`.
        labels: int array of shape `(examples,)`: each example's class;
            every class must occur (else its bias would run to -inf).
        iterations: int. Newton steps at most.

    Returns:
        float64 array of shape `(labels,)`.

    Example:
    >>> import numpy as np
    >>> from tf_adapters.evaluation.calibration import fit_label_bias
    >>> logits = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 0.5], [0.0, 3.0]])
    >>> b = fit_label_bias(logits, np.array([0, 1, 0, 1]))
    >>> bool(b[1] < 0 < b[0]), round(float(b.sum()), 12)
    (True, 0.0)
    """
    logits = np.asarray(logits, "float64")
    labels = np.asarray(labels)
    count = logits.shape[1]
    missing = sorted(set(range(count)) - set(labels.tolist()))
    if missing:
        raise ValueError(
            f"Calibration needs examples of every class; classes {missing} "
            f"have none among the {len(labels)} examples."
        )
    onehot = np.eye(count)[labels]
    bias = np.zeros(count)
    for _ in range(iterations):
        z = logits + bias
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        gradient = (p - onehot).mean(axis=0)
        hessian = np.diag(p.mean(axis=0)) - p.T @ p / len(p)
        # The Hessian is singular along (1, ..., 1), where the loss does not
        # change: least squares gives the step orthogonal to it.
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        step = np.clip(step, -1.0, 1.0)  # damped: far from the optimum
        bias -= step - step.mean()
        if np.max(np.abs(step)) < 1e-9:
            break
    return bias
