"""Counting what trains, like PEFT's `print_trainable_parameters`."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class TrainableSummary:
    trainable: int
    total: int

    @property
    def percent(self):
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self):
        return (
            f"trainable params: {self.trainable:,} || all params: "
            f"{self.total:,} || trainable%: {self.percent:.4f}"
        )


def trainable_summary(model, print_fn=print):
    """Counts trainable and total parameters and prints one line.

    Each variable counts once, however many layers share it.

    Args:
        model: `keras.Model` or `keras.layers.Layer`. What to count.
        print_fn: callable or `None`. Where the line goes. Defaults to `print`.

    Returns:
        `TrainableSummary` with `trainable`, `total` and `percent`.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> s = tfa.trainable_summary(backbone)
    trainable params: 64 || all params: 1,448 || trainable%: 4.4199
    >>> s.trainable, s.total
    (64, 1448)
    """
    seen, trainable, total = set(), 0, 0
    for var in model.weights:
        if id(var) in seen:
            continue
        seen.add(id(var))
        size = int(np.prod(var.shape))
        total += size
        trainable += size if var.trainable else 0
    summary = TrainableSummary(trainable, total)
    if print_fn is not None:
        print_fn(str(summary))
    return summary
