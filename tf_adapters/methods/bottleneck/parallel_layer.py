import keras
from keras import ops

from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.methods.bottleneck.bottleneck_layer import BottleneckBlock


@keras.saving.register_keras_serializable(package="tf_adapters")
class ParallelBottleneckLayer(AdapterLayer):
    """A bottleneck beside a feed-forward block (He et al., 2022).

    Wraps the block's output projection and adds `s·block(x_in)` to its
    output, where `x_in` is the feed-forward *input*. An `InputTap` on the
    block's first projection hands `x_in` over within the same call; used
    alone (no tap), the layer reads its own input, which makes it a plain
    parallel adapter around one projection.

    Args:
        base_layer: the feed-forward output projection.
        adapter_name: str. The adapter this layer belongs to.
        bottleneck_size: int. Inner width.
        activation: str. Defaults to `"relu"`.
        layer_norm: bool. Defaults to `False`.
        scaling: float. Defaults to `1.0`.
        input_dim: int. Width of the tapped input. Defaults to `None`: the
            base layer's output width (the hidden size).
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.bottleneck import ParallelBottleneckLayer
    >>> layer = ParallelBottleneckLayer(keras.layers.Dense(4), "task", 2)
    >>> x = np.ones((1, 4), "float32")
    >>> bool(np.allclose(layer(x), layer.base_layer(x)))
    True
    """

    def __init__(
        self,
        base_layer,
        adapter_name,
        bottleneck_size,
        activation="relu",
        layer_norm=False,
        scaling=1.0,
        input_dim=None,
        **kwargs,
    ):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.bottleneck_size = bottleneck_size
        self.activation = activation
        self.layer_norm = layer_norm
        self.scaling = scaling
        self.input_dim = input_dim
        # Set by the paired `InputTap` during the same forward pass; kept out
        # of Keras tracking on purpose (it is a tensor, not state).
        object.__setattr__(self, "_tapped", None)

    def build(self, input_shape=None):
        self._build_base(input_shape)
        hidden_dim = EinsumSpec.from_layer(self.projection).output_dim
        if self.input_dim is None:
            self.input_dim = hidden_dim
        self.block = BottleneckBlock(
            hidden_dim,
            self.bottleneck_size,
            self.activation,
            self.layer_norm,
            dtype=self.dtype_policy,
            name="bottleneck",
        )
        self.block.build((None, self.input_dim))
        self.built = True

    def receive(self, x):
        object.__setattr__(self, "_tapped", x)

    def adapter_call(self, inputs, training=None):
        outputs = self.base_layer(inputs, training=training)
        x = self._tapped if self._tapped is not None else inputs
        object.__setattr__(self, "_tapped", None)
        delta = self.block(ops.cast(x, outputs.dtype))
        return outputs + ops.cast(self.scaling, outputs.dtype) * delta

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "bottleneck_size": self.bottleneck_size,
                "activation": self.activation,
                "layer_norm": self.layer_norm,
                "scaling": self.scaling,
                "input_dim": self.input_dim,
            }
        )
        return config


class InputTap(AdapterLayer):
    """Passes its input through a layer unchanged and hands it to `target`.

    Args:
        base_layer: the feed-forward block's first projection.
        adapter_name: str. The adapter this tap belongs to.
        target: `ParallelBottleneckLayer` that consumes the tapped input.
    """

    def __init__(self, base_layer, adapter_name, target, **kwargs):
        super().__init__(base_layer, adapter_name, **kwargs)
        # Not tracked: the target is owned by its own slot in the model.
        object.__setattr__(self, "target", target)

    def build(self, input_shape=None):
        self.built = True

    def adapter_call(self, inputs, training=None):
        self.target.receive(inputs)
        return self.base_layer(inputs, training=training)
