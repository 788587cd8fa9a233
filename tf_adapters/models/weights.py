"""Assigning converted weights (GGUF, Hugging Face) to keras-hub variables."""

import numpy as np


def assign(variable, value, source=None):
    """Assigns `value` to `variable` as float32, refusing another shape.

    Args:
        variable: `keras.Variable`. The model's variable.
        value: array. The converted weight.
        source: str. Where `value` came from (a file or tensor name), for
            the error message. Defaults to `None`.

    Raises:
        ValueError: naming the variable, `source` and both shapes.

    Example:
    >>> import keras, numpy as np
    >>> layer = keras.layers.Dense(2, name="d")
    >>> layer.build((None, 3))
    >>> assign(layer.kernel, np.ones((3, 2)))
    >>> try:
    ...     assign(layer.kernel, np.ones((2, 3)), "w.safetensors")
    ... except ValueError as e:
    ...     print(e)  # doctest: +NORMALIZE_WHITESPACE
    w.safetensors: variable d/kernel has shape (3, 2); the weight read for it
    has shape (2, 3).
    """
    value = np.asarray(value, dtype="float32")
    if tuple(variable.shape) != value.shape:
        where = f"{source}: " if source else ""
        raise ValueError(
            f"{where}variable {variable.path} has shape "
            f"{tuple(variable.shape)}; the weight read for it has shape "
            f"{value.shape}."
        )
    variable.assign(value)
