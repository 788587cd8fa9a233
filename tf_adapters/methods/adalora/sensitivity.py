"""AdaLoRA's importance statistics, updated inside the training step.

PEFT's `RankAllocator.update_ipt` runs after `optimizer.step()` with the
step's gradients at hand: for every AdaLoRA weight `w` (each of `lora_A`,
`lora_E`, `lora_B`) with gradient `g`,

    ipt = |w · g|                                   (sensitivity)
    exp_avg_ipt = β1 · exp_avg_ipt + (1 − β1) · ipt
    exp_avg_unc = β2 · exp_avg_unc + (1 − β2) · |ipt − exp_avg_ipt|

with `w` the weight *after* the update. A Keras callback never sees the
gradients, so `AdaLoraCallback` mixes `SensitivityOptimizer` into the
model's optimizer: its `update_step` updates the statistics of each AdaLoRA
variable right after updating the variable, inside the compiled step (no
copy of the weights to the host).
"""

import keras
from keras import ops

from tf_adapters.compat.optimizers import variable_index

FACTORS = ("lora_a", "lora_e", "lora_b")


class Sensitivity:
    """`ipt`, `exp_avg_ipt` and `exp_avg_unc` (PEFT's names) of every
    factor of `layers`, each a dict keyed by `(layer index, factor name)`
    (`"lora_a"`, `"lora_e"` or `"lora_b"`) of non-trainable variables.

    Args:
        layers: list of `AdaLoraLayer`.
        beta1: float. Smoothing of the sensitivity.
        beta2: float. Smoothing of the uncertainty.

    Example:
    >>> import keras
    >>> from tf_adapters.compat.class_swap import mixed_class
    >>> from tf_adapters.methods.adalora.adalora_layer import AdaLoraLayer
    >>> from tf_adapters.methods.adalora import sensitivity as s
    >>> layer = AdaLoraLayer(keras.layers.Dense(2), "t", rank=2, alpha=8.0)
    >>> layer.build((None, 3))
    >>> stats = s.Sensitivity([layer], beta1=0.85, beta2=0.85)
    >>> optimizer = mixed_class(s.SensitivityOptimizer, keras.optimizers.SGD)(
    ...     learning_rate=0.1)
    >>> weights = [layer.lora_a, layer.lora_e, layer.lora_b]
    >>> optimizer.build(weights)
    >>> stats.index_in(optimizer)
    >>> optimizer.adalora_sensitivity = stats
    >>> optimizer.apply([keras.ops.ones(w.shape) for w in weights], weights)
    >>> stats.ipt[(0, "lora_e")].numpy().round(4)  # |(0 − 0.1·1) · 1|
    array([0.1, 0.1], dtype=float32)
    >>> stats.exp_avg_ipt[(0, "lora_e")].numpy().round(4)  # 0.15 · 0.1
    array([0.015, 0.015], dtype=float32)
    """

    def __init__(self, layers, beta1, beta2):
        self.layers = list(layers)
        self.beta1 = beta1
        self.beta2 = beta2
        self.ipt, self.exp_avg_ipt, self.exp_avg_unc = {}, {}, {}
        for key, var in self.factors():
            for table in (self.ipt, self.exp_avg_ipt, self.exp_avg_unc):
                table[key] = keras.Variable(
                    ops.zeros(var.shape), trainable=False, dtype="float32"
                )
        # Whether the step updates the statistics (PEFT stops at the final
        # phase); set by the callback when it changes.
        self.collecting = keras.Variable(1.0, trainable=False)
        self.by_index = {}

    def factors(self):
        """`((layer index, name), variable)` of every tracked factor."""
        for i, layer in enumerate(self.layers):
            for name in FACTORS:
                yield (i, name), getattr(layer, name)

    def index_in(self, optimizer):
        """Maps `optimizer`'s (built) variable indices to our keys."""
        self.by_index = {
            variable_index(optimizer, var): key for key, var in self.factors()
        }

    def observe(self, index, variable, gradient):
        """The update of one step (in the compiled step; a no-op for a
        variable that is not an AdaLoRA factor)."""
        key = self.by_index.get(index)
        if key is None:
            return
        on = self.collecting > 0.5
        ipt = ops.abs(
            ops.cast(variable, "float32") * ops.cast(gradient, "float32")
        )
        avg = self.beta1 * self.exp_avg_ipt[key] + (1 - self.beta1) * ipt
        unc = self.beta2 * self.exp_avg_unc[key] + (1 - self.beta2) * ops.abs(
            ipt - avg
        )
        for table, value in (
            (self.ipt, ipt),
            (self.exp_avg_ipt, avg),
            (self.exp_avg_unc, unc),
        ):
            table[key].assign(ops.where(on, value, table[key]))

    def score(self, key):
        """PEFT's `_element_score`: smoothed sensitivity × uncertainty."""
        return self.exp_avg_ipt[key] * self.exp_avg_unc[key]

    def reset(self):
        """PEFT's `reset_ipt`."""
        for table in (self.ipt, self.exp_avg_ipt, self.exp_avg_unc):
            for var in table.values():
                var.assign(ops.zeros(var.shape))


class SensitivityOptimizer:
    """Mixed into a Keras optimizer's class by `AdaLoraCallback`: after
    each variable's update, `adalora_sensitivity.observe(...)` (when set)
    updates that variable's statistics (`Sensitivity` has an example)."""

    class_prefix = "AdaLora"

    def update_step(self, gradient, variable, learning_rate):
        result = super().update_step(gradient, variable, learning_rate)
        sensitivity = getattr(self, "adalora_sensitivity", None)
        if sensitivity is not None:
            index = variable_index(self, variable)
            sensitivity.observe(index, variable, gradient)
        return result
