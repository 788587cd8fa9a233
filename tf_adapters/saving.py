"""Saving a whole model as a `.keras` file, atomically."""

import os
import tempfile


def save_model(model, path):
    """`model.save(path)` that never leaves a truncated `.keras` file.

    Keras writes the file in place; a kill during the write leaves a broken
    file (or destroys the one that was there). This writes a temporary file
    beside `path` and renames it into place, so `path` holds the previous
    model or the new one, whole.

    Args:
        model: `keras.Model` (adapted or not).
        path: str ending in `.keras`.

    Example:
    >>> import keras, tempfile, os
    >>> import tf_adapters as tfa
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> tfa.save_model(model, path)
    >>> keras.saving.load_model(path).count_params()
    3
    """
    if not str(path).endswith(".keras"):
        raise ValueError(
            f"`path` must end in '.keras'. Received: path={path!r}."
        )
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".keras", dir=parent
    )
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
