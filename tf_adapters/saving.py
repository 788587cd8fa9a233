"""Saving a whole model as a `.keras` file, atomically."""

from tf_adapters.core.atomic import atomic_file


def save_model(model, path):
    """`model.save(path)` that never leaves a truncated `.keras` file.

    Keras writes the file in place; a kill during the write leaves a broken
    file (or destroys the one that was there). This writes a temporary file
    beside `path` and renames it into place, so `path` holds the previous
    model or the new one, whole.

    Args:
        model: `keras.Model`. The model to save, adapted or not.
        path: str. The file to write; must end in `.keras`.

    Returns:
        `None`.

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
    # Keras picks the format from the suffix: the temporary name keeps it.
    with atomic_file(path, suffix=".keras") as tmp:
        model.save(tmp, overwrite=True)
