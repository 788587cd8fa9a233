"""A Keras optimizer's per-variable bookkeeping, for LoRA+
(`tf_adapters.training.loraplus`).

Both functions read private attributes of `keras/src/optimizers/
base_optimizer.py`, checked on Keras 3.15-3.16 (dev) with the TensorFlow
backend.
"""


def variable_index(optimizer, variable):
    """The position of `variable` among those `optimizer` was built with.

    `update_step(gradient, variable, learning_rate)` receives, on
    TensorFlow, the `tf.Variable` under the Keras variable (one replica's
    copy under a `tf.distribute` strategy), whose name is the short name,
    not the path. Relies on `BaseOptimizer._get_variable_index` (Keras
    3.0+), which every built-in optimizer's `update_step` uses to find its
    slots and which maps all of those back to one index. Public
    alternative: none that works under a distribution strategy.
    """
    return optimizer._get_variable_index(variable)


def copy_weight_decay_exclusions(source, target):
    """Gives `target` the exclusions `source.exclude_from_weight_decay(...)`
    set, which `get_config` does not carry.

    Relies on the attributes `_exclude_from_weight_decay` (keys of the
    excluded variables) and `_exclude_from_weight_decay_pattern` (the
    compiled names) that `BaseOptimizer.exclude_from_weight_decay` sets
    (Keras 3.0+); neither exists until it is called. Public alternative:
    call `target.exclude_from_weight_decay(...)` again with the same
    arguments, which only the caller knows.
    """
    for attr in (
        "_exclude_from_weight_decay",
        "_exclude_from_weight_decay_pattern",
    ):
        if hasattr(source, attr):
            setattr(target, attr, getattr(source, attr))
