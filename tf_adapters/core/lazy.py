"""Names a package imports on first use (PEP 562), so that importing it
stays light: `tf-adapters --help` reads the configs and the method
registry without loading TensorFlow, which the layers need."""

import importlib
import sys


def lazy_attributes(package, sources):
    """A module `__getattr__` for `package` that imports `sources[name]`
    (a module path) the first time `name` is used, and returns its `name`.

    `from package import name` works as with an eager import; the value is
    then kept on the package.

    Args:
        package: str. The package's `__name__`.
        sources: dict. `{name: module path that defines it}`.

    Example:
    >>> import types
    >>> from tf_adapters.core.lazy import lazy_attributes
    >>> package = types.ModuleType("package")
    >>> sys.modules["package"] = package
    >>> package.__getattr__ = lazy_attributes("package", {"dumps": "json"})
    >>> from package import dumps
    >>> dumps([1])
    '[1]'
    >>> package.loads
    Traceback (most recent call last):
    ...
    AttributeError: module 'package' has no attribute 'loads'
    >>> del sys.modules["package"]
    """

    def __getattr__(name):
        if name not in sources:
            raise AttributeError(
                f"module {package!r} has no attribute {name!r}"
            )
        value = getattr(importlib.import_module(sources[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
