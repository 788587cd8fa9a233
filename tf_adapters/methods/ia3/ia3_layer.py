import keras
from keras import ops

from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.einsum_spec import scale_along
from tf_adapters.core.routing import apply_gate


@keras.saving.register_keras_serializable(package="tf_adapters")
class IA3Layer(AdapterLayer):
    """Rescales a projection's output (keys, values) or input (the
    feed-forward activation) by a learned vector that starts at one.

    Args:
        base_layer: `keras.layers.Dense` or `keras.layers.EinsumDense`.
        adapter_name: str. The adapter this layer belongs to.
        scale_input: bool. Scale the input features instead of the output.
            Defaults to `False`.
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.ia3 import IA3Layer
    >>> layer = IA3Layer(keras.layers.Dense(4), "task")
    >>> x = np.ones((2, 3), "float32")
    >>> bool(np.allclose(layer(x), layer.base_layer(x)))
    True
    """

    def __init__(self, base_layer, adapter_name, scale_input=False, **kwargs):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.scale_input = scale_input

    @property
    def mergeable(self):
        return True

    @property
    def pre_activation(self):
        return not self.scale_input

    def build(self, input_shape=None):
        self._build_base(input_shape)
        self.spec = EinsumSpec.from_layer(self.projection)
        self.ia3_scale = self.add_weight(
            name="ia3_scale",
            shape=self.spec.dims(self._scaled_letters()),
            initializer="ones",
        )
        self.built = True

    def _scaled_letters(self):
        if self.scale_input:
            return self.spec.contracted
        return self.spec.kernel_out

    def adapter_call(self, inputs, training=None, gate=None):
        scale = ops.cast(self.ia3_scale, self.compute_dtype)
        if self.scale_input:
            x = scale_along(
                inputs, self.spec.input, scale, self.spec.contracted
            )
            x = _gated(inputs, x, gate)
            return self.base_layer(x, training=training)
        outputs = self.base_layer(inputs, training=training)
        return self.update_output(inputs, outputs, gate=gate)

    def update_output(self, inputs, outputs, training=None, gate=None):
        scale = ops.cast(self.ia3_scale, self.compute_dtype)
        if self.scale_input:
            # W(l·x) − W(x): the projection is linear (any bias cancels).
            x = scale_along(
                inputs, self.spec.input, scale, self.spec.contracted
            )
            delta = self.projection(x) - self.projection(inputs)
            return outputs + apply_gate(gate, delta)
        scaled = scale_along(
            outputs, self.spec.output, scale, self.spec.kernel_out
        )
        return _gated(outputs, scaled, gate)

    def _rescale(self, factor):
        """Multiplies the kernel (and bias) by `factor` along scaled axes."""
        kernel = self.projection.kernel
        new = scale_along(
            ops.cast(kernel, "float32"),
            self.spec.kernel,
            ops.cast(factor, "float32"),
            self._scaled_letters(),
        )
        kernel.assign(ops.cast(new, kernel.dtype))
        bias = getattr(self.projection, "bias", None)
        if self.scale_input or bias is None:
            return
        if tuple(bias.shape) != tuple(factor.shape):
            raise ValueError(
                f"Cannot merge IA3 into {self.projection.name!r}: its bias "
                f"shape {tuple(bias.shape)} does not match the scale shape "
                f"{tuple(factor.shape)}."
            )
        new_bias = ops.cast(bias, "float32") * ops.cast(factor, "float32")
        bias.assign(ops.cast(new_bias, bias.dtype))

    def merge(self):
        self._rescale(self.ia3_scale)
        self.merged = True

    def unmerge(self):
        smallest = float(ops.min(ops.abs(self.ia3_scale)))
        if smallest < 1e-6:
            raise ValueError(
                f"Cannot unmerge IA3 from {self.projection.name!r}: a scale is "
                f"{smallest:g}, too close to zero to divide by."
            )
        self._rescale(1.0 / ops.convert_to_tensor(self.ia3_scale))
        self.merged = False

    def get_config(self):
        config = super().get_config()
        config.update({"scale_input": self.scale_input})
        return config


def _gated(plain, scaled, gate):
    """`scaled` where the gate is 1, `plain` where it is 0, and the linear
    interpolation for a weight in between."""
    if gate is None:
        return scaled
    return plain + apply_gate(gate, scaled - plain)
