"""Where tf_adapters keeps what it can rebuild: converted presets and
compiled XLA programs. Imports no TensorFlow, so the command can find it
before TensorFlow loads."""

import os

CACHE_ENV = "TF_ADAPTERS_CACHE"


def cache_dir():
    """`$TF_ADAPTERS_CACHE`, or `~/.cache/tf_adapters`.

    Returns:
        str: the folder (it may not exist yet).

    Example:

    >>> import os
    >>> os.environ["TF_ADAPTERS_CACHE"] = "/tmp/tfa-cache"
    >>> cache_dir()
    '/tmp/tfa-cache'
    >>> del os.environ["TF_ADAPTERS_CACHE"]
    >>> cache_dir().endswith(os.path.join(".cache", "tf_adapters"))
    True
    """
    return os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "tf_adapters"
    )
