"""The installed Keras / keras-hub versions, as comparable tuples."""

import keras
import keras_hub


def version_tuple(text):
    """`"3.16.0.dev2026"` → `(3, 16, 0)`: the leading numeric parts.

    >>> version_tuple("3.16.0.dev2026102704")
    (3, 16, 0)
    """
    parts = []
    for part in text.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


KERAS = version_tuple(keras.version())
KERAS_HUB = version_tuple(keras_hub.__version__)
