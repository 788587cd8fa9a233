"""AdaLoRA's orthogonality penalty on `P` and `Q`, as a Keras regularizer.

PEFT (`AdaLoraModel.forward`) adds to the loss `orth_reg_weight` times the
mean, over every `lora_A` and `lora_B` matrix of the adapter, of
`‖AAᵀ − I‖_F` (for `A`, `(r, in)`) and `‖BᵀB − I‖_F` (for `B`,
`(out, r)`): the Frobenius norm itself, not its square as written in the
paper, over all `r` rows including masked ones. Here each matrix carries
that term as a weight regularizer, with `weight = orth_reg_weight /
(number of matrices)`, so Keras adds the same sum to the loss in `fit` and
`evaluate` (`model.losses`).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_adapters")
class OrthogonalPenalty(keras.regularizers.Regularizer):
    """`weight · ‖MᵀM − I‖_F`, `M` a factor with its rank axis last
    (`rank_first=False`, AdaLoRA's `Q` stored `(in..., r)`) or first
    (`rank_first=True`, `P` stored `(r, out...)`).

    Args:
        weight: float. The penalty's weight.
        rank_first: bool. Whether the rank is the first axis (else the
            last). Defaults to `False`.

    Example:
    >>> import numpy as np
    >>> from tf_adapters.methods.adalora.orthogonal import OrthogonalPenalty
    >>> q = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], "float32")
    >>> float(OrthogonalPenalty(0.5)(q))  # 0.5 · ‖diag(4, 1) − I‖ = 0.5 · 3
    1.5
    """

    def __init__(self, weight, rank_first=False):
        self.weight = float(weight)
        self.rank_first = bool(rank_first)

    def __call__(self, x):
        x = ops.cast(x, "float32")
        if self.rank_first:
            x = ops.transpose(ops.reshape(x, (x.shape[0], -1)))
        else:
            x = ops.reshape(x, (-1, x.shape[-1]))
        gram = ops.matmul(ops.transpose(x), x)  # (r, r)
        eye = ops.eye(x.shape[-1], dtype="float32")
        return self.weight * frobenius(gram - eye)

    def get_config(self):
        return {"weight": self.weight, "rank_first": self.rank_first}


def frobenius(x):
    """`‖x‖_F`, with a zero (not NaN) gradient where it is zero."""
    squares = ops.sum(ops.square(x))
    positive = squares > 0
    safe = ops.where(positive, squares, ops.ones_like(squares))
    return ops.where(positive, ops.sqrt(safe), ops.zeros_like(squares))
