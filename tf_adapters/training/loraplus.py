"""LoRA+ (Hayou et al., 2024, "LoRA+: Efficient Low Rank Adaptation of
Large Models"): LoRA's `B` matrices train with a learning rate
`loraplus_lr_ratio` times that of every other weight.

Keras optimizers update each variable with
`update_step(gradient, variable, learning_rate)`. `loraplus_optimizer`
gives an optimizer a twin class (`LoraPlusAdam` for `Adam`, made once per
class and registered with Keras serialization) whose `update_step`
multiplies the learning rate for `B`, so it works with every built-in
optimizer, learning-rate schedules, `fit`, `tf.distribute` and `.keras`
files.

How it differs from PEFT's `create_loraplus_optimizer`:
- `B` is LoRA's `B` only: `LoraLayer.lora_b`, and the `lora_kernel_b` of
  Keras's own `enable_lora`. PEFT also gives every trainable 1-D weight
  (biases, norm scales) the `B` rate, and LoRA on embeddings a fixed rate
  of its own (`loraplus_lr_embedding`, 1e-6); here both keep the plain
  rate.
- Weight decay (`AdamW`, or any optimizer's `weight_decay`) is applied by
  Keras before `update_step`, with the plain learning rate: `B` decays by
  `learning_rate · weight_decay` per step like every weight. PEFT sets each
  parameter group's decay to `loraplus_weight_decay` (0 unless given) and
  PyTorch's decoupled decay uses the group's rate, so there `B` decays
  `loraplus_lr_ratio` times faster.
"""

import math
import numbers

import keras

from tf_adapters.compat.class_swap import base_class_of
from tf_adapters.compat.class_swap import mixed_class
from tf_adapters.compat.optimizers import copy_weight_decay_exclusions
from tf_adapters.compat.optimizers import variable_index

# Variable names of LoRA's `B`: `LoraLayer`'s, and those of Keras's
# `enable_lora` on `Dense` / `EinsumDense` / convolutions.
LORA_B_NAMES = ("lora_b", "lora_kernel_b")


def is_lora_b(variable):
    """Whether the Keras variable `variable` is a LoRA `B` matrix."""
    return variable.path.rsplit("/", 1)[-1] in LORA_B_NAMES


def check_ratio(value):
    """`value` as a float, if it is a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ValueError(
            "`loraplus_lr_ratio` must be a finite number > 0. Received: "
            f"loraplus_lr_ratio={value!r}."
        )
    return float(value)


class LoraPlusOptimizer:
    """Mixed into a Keras optimizer class by `loraplus_optimizer`: LoRA's
    `B` matrices update with `learning_rate * loraplus_lr_ratio`."""

    class_prefix = "LoraPlus"

    def __init__(self, *args, loraplus_lr_ratio=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.loraplus_lr_ratio = check_ratio(loraplus_lr_ratio)
        self._lora_b_flags = ()

    def build(self, variables):
        if not self.built:
            # Indexed as `variables`, which is how `update_step` finds them.
            self._lora_b_flags = tuple(is_lora_b(v) for v in variables)
        super().build(variables)

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.loraplus_lr_ratio != 1.0
            and self._lora_b_flags[variable_index(self, variable)]
        ):
            learning_rate = learning_rate * self.loraplus_lr_ratio
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["loraplus_lr_ratio"] = self.loraplus_lr_ratio
        return config


def updates_each_variable(cls):
    """Whether optimizer class `cls` has its own `update_step` (not one that
    hands the work to inner optimizers, like `LossScaleOptimizer`)."""
    return cls.update_step is not keras.optimizers.Optimizer.update_step


def loraplus_optimizer(optimizer, loraplus_lr_ratio):
    """A copy of `optimizer` that trains LoRA's `B` matrices with
    `loraplus_lr_ratio` times its learning rate (LoRA+).

    LoRA+ (Hayou et al., 2024) shows that one learning rate for both LoRA
    factors makes feature learning inefficient in wide models; a larger
    rate for `B` (the paper's ratio `ηB/ηA`, e.g. 16) speeds up
    fine-tuning. Every variable whose path ends in `lora_b`
    (`tfa.LoraConfig` adapters) or `lora_kernel_b` (Keras's
    `enable_lora`) updates with `learning_rate * loraplus_lr_ratio`; every
    other one with `learning_rate`, whether a float or a schedule. Weight
    decay (`AdamW`) uses the plain learning rate for every variable; see
    the module's docstring for how this differs from PEFT's
    `create_loraplus_optimizer`.

    The copy is of `optimizer`'s class, plus LoRA+ (`LoraPlusAdam` for
    `Adam`), with its `get_config()` and `exclude_from_weight_decay`
    settings; its config holds `loraplus_lr_ratio`, so
    `keras.optimizers.deserialize` and a `.keras` file of a compiled model
    restore it. A ratio of 1 updates exactly as `optimizer` does.

    Args:
        optimizer: `keras.optimizers.Optimizer`, not yet built (not used by
            `fit` or `apply` yet), with its own `update_step` (not a
            `LossScaleOptimizer`: pass its inner optimizer).
        loraplus_lr_ratio: float > 0. `B`'s learning rate over the
            others'.

    Returns:
        A new `keras.optimizers.Optimizer` for `model.compile`.

    Raises:
        ValueError: naming `optimizer` or `loraplus_lr_ratio` and the value
            received, for a ratio that is not a number > 0, or an
            optimizer that is not a Keras optimizer, is already built, is
            already LoRA+, or updates through other optimizers.

    Example:
    >>> import keras, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> optimizer = tfa.loraplus_optimizer(keras.optimizers.SGD(0.1), 16)
    >>> type(optimizer).__name__, optimizer.get_config()["loraplus_lr_ratio"]
    ('LoraPlusSGD', 16.0)
    >>> weights = backbone.trainable_weights
    >>> optimizer.apply([-keras.ops.ones(w.shape) for w in weights], weights)
    >>> b = [w for w in weights if w.path.endswith("lora_b")][0]
    >>> round(float(b.numpy().max()), 4)  # B started at 0: 16 · 0.1 · 1
    1.6
    """
    loraplus_lr_ratio = check_ratio(loraplus_lr_ratio)
    check_optimizer(optimizer)
    cls = mixed_class(LoraPlusOptimizer, type(optimizer), register=True)
    config = {**optimizer.get_config(), "loraplus_lr_ratio": loraplus_lr_ratio}
    copy = cls.from_config(config)
    copy_weight_decay_exclusions(optimizer, copy)
    return copy


def check_optimizer(optimizer):
    """Refuses what `loraplus_optimizer` cannot copy with LoRA+."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "`optimizer` must be a `keras.optimizers.Optimizer` instance "
            "such as `keras.optimizers.Adam(1e-4)`. Received: "
            f"optimizer={optimizer!r}."
        )
    name = type(optimizer).__name__
    if isinstance(optimizer, LoraPlusOptimizer):
        raise ValueError(
            f"`optimizer` is already a LoRA+ optimizer ({name}, ratio "
            f"{optimizer.loraplus_lr_ratio:g}). Pass the plain "
            f"{base_class_of(optimizer).__name__}."
        )
    if not updates_each_variable(type(optimizer)):
        raise ValueError(
            f"`optimizer` ({name}) updates variables through other "
            "optimizers; pass the optimizer it wraps (Keras adds the "
            "`LossScaleOptimizer` of mixed precision itself in `compile`)."
        )
    if optimizer.built:
        raise ValueError(
            f"`optimizer` ({name}) is already built: it has state for the "
            "variables it trained. Pass a new optimizer, not one that `fit` "
            "or `apply` has used."
        )


def register_keras_optimizers():
    """Registers the LoRA+ twin of every built-in Keras optimizer, so
    `keras.saving.load_model` and `keras.optimizers.deserialize` find them
    in a fresh process. (The twin of another optimizer class is registered
    when `loraplus_optimizer` first copies one.)"""
    for name in dir(keras.optimizers):
        value = getattr(keras.optimizers, name)
        if (
            isinstance(value, type)
            and issubclass(value, keras.optimizers.Optimizer)
            and updates_each_variable(value)
        ):
            mixed_class(LoraPlusOptimizer, value, register=True)
