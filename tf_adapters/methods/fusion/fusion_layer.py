"""The attention that mixes several adapters' updates on one layer."""

import contextlib
import contextvars
import string

import keras
import numpy as np
from keras import ops

from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.einsum_spec import einsum

# Mixing weights of the calls made inside `recording()`: {id(layer): [p]}.
_RECORD = contextvars.ContextVar("tf_adapters_fusion_record", default=None)


@contextlib.contextmanager
def recording():
    """Collects every fusion layer's mixing weights (eager calls)."""
    found = {}
    token = _RECORD.set(found)
    try:
        yield found
    finally:
        _RECORD.reset(token)


@keras.saving.register_keras_serializable(package="tf_adapters")
class FusionLayer(AdapterLayer):
    """AdapterFusion on one projection: query from the projection's plain
    output `y`, keys and values from each fused adapter's update `Δ_j`.

    It runs only while its fusion is active, through the slot's composer
    (`tf_adapters.injection.compose`), which hands it `y` and the `Δ_j`.

    Args:
        base_layer: the layer it wraps (the slot's outermost adapter).
        adapter_name: str. The fusion's name.
        adapters: list of str. The adapters it mixes on this layer, in the
            order the composer hands their updates over.
        temperature: float. The softmax temperature.
        init_std: float. Initial standard deviation of the query and key
            kernels.
    """

    is_fusion = True

    def __init__(
        self,
        base_layer,
        adapter_name,
        adapters,
        temperature=1.0,
        init_std=0.02,
        **kwargs,
    ):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.adapters = list(adapters)
        self.temperature = float(temperature)
        self.init_std = float(init_std)

    def build(self, input_shape=None):
        self._build_base(input_shape)
        spec = EinsumSpec.from_layer(self.projection)
        out = spec.kernel_out
        dims = spec.dims(out)
        fresh = [c for c in string.ascii_uppercase if c not in spec.output]
        mapped = "".join(fresh[: len(out)])
        # y (output letters) times a square kernel over the output axes.
        self._project = f"{spec.output},{out}{mapped}->" + _rename(
            spec.output, out, mapped
        )
        self._reduce = tuple(range(-len(out), 0))
        square = dims + dims
        normal = keras.initializers.RandomNormal(stddev=self.init_std)
        identity = np.eye(int(np.prod(dims)), dtype="float32").reshape(square)
        for part in ("query", "key", "value"):
            kernel = self.add_weight(
                name=f"{part}_kernel",
                shape=square,
                initializer=(
                    keras.initializers.Constant(identity)
                    if part == "value"
                    else normal
                ),
            )
            bias = self.add_weight(
                name=f"{part}_bias", shape=dims, initializer="zeros"
            )
            setattr(self, f"_{part}", (kernel, bias))
        self.built = True

    def _dense(self, part, x):
        kernel, bias = getattr(self, f"_{part}")
        kernel = ops.cast(kernel, x.dtype)
        return einsum(self._project, x, kernel) + ops.cast(bias, x.dtype)

    def fuse(self, outputs, deltas):
        """`outputs + Σ_j p_j · v(Δ_j)`, `p = softmax_j(q·k_j / T)`."""
        query = self._dense("query", outputs)
        scores = ops.stack(
            [
                ops.sum(query * self._dense("key", d), axis=self._reduce)
                for d in deltas
            ],
            axis=-1,
        )
        probs = ops.softmax(
            ops.cast(scores, "float32") / self.temperature, axis=-1
        )
        record = _RECORD.get()
        if record is not None:
            record.setdefault(id(self), []).append(probs)
        for j, delta in enumerate(deltas):
            p = ops.cast(probs[..., j], delta.dtype)
            for _ in self._reduce:
                p = ops.expand_dims(p, -1)
            outputs = outputs + p * self._dense("value", delta)
        return outputs

    def update_output(self, inputs, outputs, training=None, gate=None):
        raise RuntimeError(
            f"Fusion layer {self.name!r} runs only while its fusion "
            f"{self.adapter_name!r} is active (`set_active_adapter`)."
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "adapters": self.adapters,
                "temperature": self.temperature,
                "init_std": self.init_std,
            }
        )
        return config


def _rename(subscripts, old, new):
    return subscripts.translate(str.maketrans(old, new))
