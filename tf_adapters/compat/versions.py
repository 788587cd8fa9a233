"""The installed Keras version, as a comparable tuple."""

import keras


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
