"""Handing a tensor from one sublayer to another within one call of their
common parent layer.

A parallel adapter adds `s·f(x_in)` to a feed-forward block's output, where
`x_in` is the block's *input*; keras-hub decoders run the block inline in
their own `call`, so the output projection never sees `x_in`. The layer that
sees it (a tap on the input projection) hands it over through the scope of
the decoder layer's current call: `ForwardScopeMixin` opens a fresh scope
around every call of the layer it is mixed into, and the scope is gone when
the call returns, so no tensor outlives the call that made it (nor leaks
into another trace or thread).

Example:
>>> import numpy as np
>>> from tf_adapters.core import forward_scope as fs
>>> with fs.forward_scope():
...     fs.hand_over("key", np.ones(2))
...     fs.receive("key")
array([1., 1.])
>>> fs.receive("key") is None  # outside any call: nothing to receive
True
"""

import contextlib
import contextvars

_SCOPE = contextvars.ContextVar("tf_adapters_forward_scope", default=None)


@contextlib.contextmanager
def forward_scope():
    """A fresh scope for the duration of a block (one layer call)."""
    token = _SCOPE.set({})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def hand_over(key, tensor):
    """Leaves `tensor` for `receive(key)` in the current scope (if any)."""
    scope = _SCOPE.get()
    if scope is not None:
        scope[key] = tensor


def receive(key):
    """Takes what was handed over under `key` in this scope, or `None`."""
    scope = _SCOPE.get()
    return None if scope is None else scope.pop(key, None)


class ForwardScopeMixin:
    """Mixed into a layer (a decoder block) whose sublayers hand tensors to
    each other: every call of the layer runs in its own scope."""

    # The mixed class keeps the layer's class name: `.keras` files key the
    # weights of a functional model's layers by their class names.
    class_prefix = ""

    def call(self, *args, **kwargs):
        with forward_scope():
            return super().call(*args, **kwargs)
