import keras
from keras import ops

from tf_adapters.compat.layers import set_untracked
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.routing import apply_gate


class BottleneckBlock(keras.layers.Layer):
    """`up(act(down(norm(x))))` with `up` initialised to zero.

    Args:
        hidden_dim: int. Output width (the input's width comes from `build`).
        bottleneck_size: int. Inner width.
        activation: str. Nonlinearity between the projections.
        layer_norm: bool. Whether to layer-normalise the input first.
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self, hidden_dim, bottleneck_size, activation, layer_norm, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.bottleneck_size = bottleneck_size
        self.activation = activation
        self.layer_norm = layer_norm

    def build(self, input_shape):
        shape = (None, input_shape[-1])
        self.norm = None
        if self.layer_norm:
            self.norm = keras.layers.LayerNormalization(
                dtype=self.dtype_policy, name="adapter_norm"
            )
            self.norm.build(shape)
        self.down = keras.layers.Dense(
            self.bottleneck_size,
            activation=self.activation,
            kernel_initializer=keras.initializers.HeUniform(),
            dtype=self.dtype_policy,
            name="down",
        )
        self.down.build(shape)
        self.up = keras.layers.Dense(
            self.hidden_dim,
            kernel_initializer="zeros",
            dtype=self.dtype_policy,
            name="up",
        )
        self.up.build((None, self.bottleneck_size))
        self.built = True

    def call(self, inputs):
        x = inputs
        if self.norm is not None:
            # Built for (None, d): Keras 3.16 fixes a LayerNormalization's
            # axis from the rank it was built with, so normalise rank-2 rows
            # (the same values for any input rank).
            rows = ops.reshape(x, (-1, ops.shape(x)[-1]))
            x = ops.reshape(self.norm(rows), ops.shape(x))
        return self.up(self.down(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "bottleneck_size": self.bottleneck_size,
                "activation": self.activation,
                "layer_norm": self.layer_norm,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tf_adapters")
class BottleneckLayer(AdapterLayer):
    """A serial bottleneck adapter after a projection: `y + s·block(y)`.

    Placed on the attention and feed-forward output projections it is the
    Houlsby adapter (before each residual add); on the feed-forward output
    alone it is the Pfeiffer adapter.

    Args:
        base_layer: `keras.layers.Dense` or `keras.layers.EinsumDense` whose
            output's last axis is the model's hidden size.
        adapter_name: str. The adapter this layer belongs to.
        bottleneck_size: int. Inner width.
        activation: str. Defaults to `"relu"`.
        layer_norm: bool. Defaults to `False`.
        scaling: float. Defaults to `1.0`.
        shared: `BottleneckLayer` whose block this layer uses instead of its
            own (parameter sharing across layers). Defaults to `None`.
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.bottleneck import BottleneckLayer
    >>> layer = BottleneckLayer(keras.layers.Dense(8), "task", 2)
    >>> x = np.ones((1, 3, 4), "float32")
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
        shared=None,
        **kwargs,
    ):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.bottleneck_size = bottleneck_size
        self.activation = activation
        self.layer_norm = layer_norm
        self.scaling = scaling
        # Not tracked as a sublayer: the owner lives in its own slot.
        set_untracked(self, "shared", shared)

    def build(self, input_shape=None):
        self._build_base(input_shape)
        hidden_dim = EinsumSpec.from_layer(self.projection).output_dim
        input_dim = self._block_input_dim(hidden_dim)
        if self.shared is not None:
            block = self.shared.block
            if (block.hidden_dim, block.down.kernel.shape[0]) != (
                hidden_dim,
                input_dim,
            ):
                raise ValueError(
                    "Cannot share a bottleneck block between "
                    f"{self.shared.base_layer.name!r} and "
                    f"{self.base_layer.name!r}: their widths differ."
                )
            self.block = block
            self.built = True
            return
        self.block = BottleneckBlock(
            hidden_dim,
            self.bottleneck_size,
            self.activation,
            self.layer_norm,
            dtype=self.dtype_policy,
            name="bottleneck",
        )
        self.block.build((None, input_dim))
        self.built = True

    def _block_input_dim(self, hidden_dim):
        """Width of what the block reads: the projection's output here."""
        return hidden_dim

    def update_output(self, inputs, outputs, training=None, gate=None):
        delta = ops.cast(self.scaling, outputs.dtype) * self.block(outputs)
        return outputs + apply_gate(gate, delta)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "bottleneck_size": self.bottleneck_size,
                "activation": self.activation,
                "layer_norm": self.layer_norm,
                "scaling": self.scaling,
            }
        )
        return config
