"""The article's regularized objective, J = L + λ/2 · Σᵢ ‖θᵢ − αᵢ‖² (L2-SP).

A penalty on the distance between each trained weight θ and its value α
when training started (the pretrained weight for full fine-tuning, the
initial value for an adapter's weights), as in Li et al., "Explicit
Inductive Bias for Transfer Learning with Convolutional Networks" (2018).
It is a Keras weight regularizer: Keras adds it to the loss in `fit` and
`evaluate` (`model.losses`), so it works with any model and optimizer.
"""

import keras
from keras import ops


class L2SP(keras.regularizers.Regularizer):
    """`strength / 2 · ‖x − anchor‖²` for one variable.

    Args:
        anchor: `keras.Variable` (not trainable) holding the reference value.
        strength: float. λ.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.training.l2sp import L2SP
    >>> anchor = keras.Variable(np.zeros(3, "float32"), trainable=False)
    >>> float(L2SP(anchor, 0.5)(np.array([1.0, 2.0, 2.0], "float32")))
    2.25
    """

    def __init__(self, anchor, strength):
        self.anchor = anchor
        self.strength = float(strength)

    def __call__(self, x):
        diff = ops.cast(x, "float32") - ops.cast(self.anchor, "float32")
        return 0.5 * self.strength * ops.sum(ops.square(diff))

    def get_config(self):
        # The anchor is a value of this training run, not configuration: a
        # saved model keeps no L2-SP penalty (it is a training objective).
        return {"strength": self.strength}


def apply_l2sp(model, strength):
    """Adds the L2-SP penalty on every trainable weight of `model`.

    Call it after choosing what trains (adding an adapter, or unfreezing the
    model) and before `compile`: each trainable variable's current value
    becomes its anchor α. Returns the number of variables penalized.

    Args:
        model: `keras.Model`.
        strength: float > 0. λ.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.training.l2sp import apply_l2sp, l2sp_penalty
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> apply_l2sp(model, 2.0)
    2
    >>> _ = model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    >>> round(float(l2sp_penalty(model)), 4)  # 2/2 · (1² + 1²)
    2.0
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise TypeError(f"`l2sp` must be a number. Received: {strength!r}.")
    if not strength > 0:
        raise ValueError(f"`l2sp` must be > 0. Received: {strength}.")
    remove_l2sp(model)
    variables = model.trainable_weights
    if not variables:
        raise ValueError(
            "The model has no trainable weights to regularize; add an "
            "adapter or unfreeze layers before `apply_l2sp`."
        )
    for var in variables:
        anchor = keras.Variable(
            ops.convert_to_tensor(var),
            trainable=False,
            dtype=var.dtype,
            name=f"{var.name}_l2sp_anchor",
        )
        var.regularizer = L2SP(anchor, strength)
    return len(variables)


def remove_l2sp(model):
    """Takes the L2-SP penalty off every weight of `model`."""
    for var in model.weights:
        if isinstance(var.regularizer, L2SP):
            var.regularizer = None


def l2sp_penalty(model):
    """The current value of the penalty summed over `model`'s weights."""
    total = 0.0
    for var in model.trainable_weights:
        if isinstance(var.regularizer, L2SP):
            total += var.regularizer(var)
    return total
