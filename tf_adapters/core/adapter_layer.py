"""The base class of every adapter layer that wraps a base-model sublayer."""

import keras

from tf_adapters.compat.layers import direct_sublayers
from tf_adapters.compat.layers import get_untracked
from tf_adapters.compat.layers import own_variables
from tf_adapters.core import routing

# The attribute holding a slot's composer (`injection.compose`), set on the
# outermost wrapper of a slot while several adapters are active at once.
COMPOSER = "tfa_composer"


def adapter_dtype_policy(base_layer):
    """Adapter weights stay float32; compute follows the wrapped layer."""
    compute = keras.backend.standardize_dtype(base_layer.compute_dtype)
    if compute == "float32":
        return keras.DTypePolicy("float32")
    return keras.DTypePolicy(f"mixed_{compute}")


class AdapterLayer(keras.layers.Layer):
    """A layer that wraps one sublayer of a model and adds an adapter to it.

    Subclasses implement `adapter_call`; when the adapter is disabled the
    wrapper calls the base layer alone, so the output is bit-identical to the
    unadapted model. The wrapped layer is kept as `base_layer` and is never
    modified except by an explicit merge.

    Args:
        base_layer: `keras.layers.Layer`. The (built) layer to wrap.
        adapter_name: str. The name of the adapter this layer belongs to.
        **kwargs: Base layer keyword arguments such as `name` and `dtype`.
    """

    # Whether its calls hand tensors to another adapter layer through the
    # forward scope of the enclosing decoder layer (`core.forward_scope`).
    needs_forward_scope = False
    # Keys of `adapter_variables()` that stay frozen while the adapter
    # trains (e.g. PiSSA's starting pair, which is subtracted, not learned).
    frozen_keys = ()
    # Whether it only passes its input on to another adapter layer (a tap),
    # adding no update of its own.
    passes_through = False
    # Whether it mixes other adapters' updates (a fusion).
    is_fusion = False

    def __init__(
        self, base_layer, adapter_name, hoisted_activation=None, **kwargs
    ):
        kwargs.setdefault("dtype", adapter_dtype_policy(base_layer))
        kwargs.setdefault("name", f"{base_layer.name}_{adapter_name}")
        super().__init__(**kwargs)
        self.base_layer = base_layer
        self.adapter_name = adapter_name
        self.adapter_enabled = True
        self.merged = False
        self.hoisted_activation = (
            keras.activations.get(hoisted_activation)
            if hoisted_activation is not None
            else None
        )

    @property
    def pre_activation(self):
        """Whether the adapter acts before the projection's own activation.

        Such adapters (LoRA, IA3 on outputs) take a fused activation such as
        `Dense(activation="gelu")` out of the projection and apply it after
        their own update, so that merging the update into the kernel is exact.
        """
        return False

    def _build_base(self, input_shape):
        """Builds a base layer this wrapper was given unbuilt (and so owns)."""
        if not self.base_layer.built:
            self.base_layer.build(input_shape)
            self.attach()

    def attach(self):
        """Called once this layer sits in its slot in the model."""
        if not self.pre_activation:
            return
        layer = self.base_layer
        while isinstance(layer, AdapterLayer):
            if layer.hoisted_activation is not None:
                self.hoisted_activation = layer.hoisted_activation
                layer.hoisted_activation = None
                return
            layer = layer.base_layer
        if not _is_linear(getattr(layer, "activation", None)):
            self.hoisted_activation = layer.activation
            layer.activation = keras.activations.linear

    def detach(self):
        """Called before this layer leaves the model: hands back a hoisted
        activation to the next adapter (or the projection) below."""
        if self.hoisted_activation is None:
            return
        layer = self.base_layer
        while isinstance(layer, AdapterLayer) and not layer.pre_activation:
            layer = layer.base_layer
        if isinstance(layer, AdapterLayer):
            layer.hoisted_activation = self.hoisted_activation
        else:
            layer.activation = self.hoisted_activation
        self.hoisted_activation = None

    @property
    def projection(self):
        """The base-model layer under any other adapters on this slot."""
        return innermost(self.base_layer)

    @property
    def mergeable(self):
        return False

    def adapter_variables(self):
        """The adapter's own variables, keyed by a path stable across builds.

        Keys are relative to this layer (`lora_a`, `bottleneck/up/kernel`);
        the wrapped base layer's variables are not included.
        """
        found = {}

        def visit(layer, prefix):
            for v in own_variables(layer):
                found[prefix + v.name] = v
            for child in direct_sublayers(layer):
                if child is not self.base_layer:
                    visit(child, f"{prefix}{child.name}/")

        visit(self, "")
        return found

    def call(self, inputs, training=None):
        composer = get_untracked(self, COMPOSER)
        if composer is not None and not routing.routing_active():
            # Several adapters at once on this slot (`Stack`, `Parallel`,
            # a fusion): the composer calls the projection and each one's
            # `update_output` itself.
            return composer(inputs, training=training)
        gate = None
        if routing.routing_active() and not self.merged:
            gate = routing.gate(self.adapter_name)
            enabled = gate is not None
        else:
            enabled = self.adapter_enabled and not self.merged
        if enabled:
            outputs = self.adapter_call(inputs, training=training, gate=gate)
        else:
            outputs = self.base_layer(inputs, training=training)
        if self.hoisted_activation is not None:
            outputs = self.hoisted_activation(outputs)
        return outputs

    def adapter_call(self, inputs, training=None, gate=None):
        """The adapted output. `gate` (a float per example, shape
        `(batch,)`: 0/1 when each example picks one adapter, any weight when
        examples mix adapters) is set when adapters are routed per example:
        scale the update with `routing.apply_gate(gate, update)`."""
        outputs = self.base_layer(inputs, training=training)
        return self.update_output(inputs, outputs, training=training, gate=gate)

    def update_output(self, inputs, outputs, training=None, gate=None):
        """This adapter applied to `outputs`, the output of the layer under
        it for `inputs` (the plain projection's, or what the adapters before
        it in a `Stack` left)."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return self.base_layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "base_layer": keras.layers.serialize(self.base_layer),
                "adapter_name": self.adapter_name,
            }
        )
        if self.hoisted_activation is not None:
            config["hoisted_activation"] = keras.activations.serialize(
                self.hoisted_activation
            )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["base_layer"] = keras.layers.deserialize(config["base_layer"])
        layer = cls(**config)
        return layer


def _is_linear(activation):
    return activation is None or getattr(activation, "__name__", "") == "linear"


def innermost(layer):
    """The base-model layer under a chain of adapter wrappers."""
    while isinstance(layer, AdapterLayer):
        layer = layer.base_layer
    return layer
