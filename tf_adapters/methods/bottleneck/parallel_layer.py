import keras
from keras import ops

from tf_adapters.compat.layers import set_untracked
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.forward_scope import hand_over
from tf_adapters.core.forward_scope import receive
from tf_adapters.core.routing import apply_gate
from tf_adapters.methods.bottleneck.bottleneck_layer import BottleneckLayer


@keras.saving.register_keras_serializable(package="tf_adapters")
class ParallelBottleneckLayer(BottleneckLayer):
    """A bottleneck beside a feed-forward block (He et al., 2022).

    Wraps the block's output projection and adds `s·block(x_in)` to its
    output, where `x_in` is the feed-forward *input*. An `InputTap` on the
    block's first projection hands `x_in` over through the forward scope of
    the decoder layer's call (`tf_adapters.core.forward_scope`); used alone
    (no tap), the layer reads its own input, which makes it a plain
    parallel adapter around one projection.

    Args:
        base_layer: the feed-forward output projection.
        adapter_name: str. The adapter this layer belongs to.
        *args: `BottleneckLayer` arguments (bottleneck size, activation,
            layer norm, scaling).
        input_dim: int. Width of the tapped input. Defaults to `None`: the
            base layer's output width (the hidden size).
        **kw: `BottleneckLayer` keyword arguments.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.bottleneck import ParallelBottleneckLayer
    >>> layer = ParallelBottleneckLayer(keras.layers.Dense(4), "task", 2)
    >>> x = np.ones((1, 4), "float32")
    >>> bool(np.allclose(layer(x), layer.base_layer(x)))
    True
    """

    def __init__(self, base_layer, adapter_name, *args, input_dim=None, **kw):
        super().__init__(base_layer, adapter_name, *args, **kw)
        self.input_dim = input_dim
        # Set by its `InputTap`: the block input must then arrive each call.
        self.paired_tap = False

    def _block_input_dim(self, hidden_dim):
        if self.input_dim is None:
            self.input_dim = hidden_dim
        return self.input_dim

    @property
    def handoff_key(self):
        """The key its `InputTap` hands the block input over under."""
        return id(self)

    def update_output(self, inputs, outputs, training=None, gate=None):
        x = receive(self.handoff_key)
        if x is None:
            if self.paired_tap:
                raise RuntimeError(
                    f"Parallel adapter layer {self.name!r} received no input "
                    "from its InputTap: the decoder layer holding both must "
                    "be called (its call opens the forward scope they share); "
                    "the projection cannot be called alone."
                )
            x = inputs
        delta = self.block(ops.cast(x, outputs.dtype))
        delta = ops.cast(self.scaling, outputs.dtype) * delta
        return outputs + apply_gate(gate, delta)

    def get_config(self):
        config = super().get_config()
        config["input_dim"] = self.input_dim
        return config


class InputTap(AdapterLayer):
    """Passes its input through a layer unchanged and hands it to `target`
    through the current forward scope (the decoder layer's call).

    Args:
        base_layer: the feed-forward block's first projection.
        adapter_name: str. The adapter this tap belongs to.
        target: `ParallelBottleneckLayer` that consumes the tapped input.
    """

    needs_forward_scope = True
    passes_through = True

    def __init__(self, base_layer, adapter_name, target, **kwargs):
        super().__init__(base_layer, adapter_name, **kwargs)
        # Not tracked: the target is owned by its own slot in the model.
        set_untracked(self, "target", target)
        target.paired_tap = True

    def build(self, input_shape=None):
        self.built = True

    def update_output(self, inputs, outputs, training=None, gate=None):
        hand_over(self.target.handoff_key, inputs)
        return outputs
