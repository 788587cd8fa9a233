import keras
from keras import ops

from tf_adapters.compat.layers import set_untracked
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.routing import apply_gate
from tf_adapters.methods.lora.config import lora_scale


@keras.saving.register_keras_serializable(package="tf_adapters")
class LoraLayer(AdapterLayer):
    """A `Dense`/`EinsumDense` plus a low-rank branch `scale·(x·A)·B`.

    The branch is computed beside the frozen projection rather than folded into
    its kernel, so training never forms (or differentiates) `W + A·B`.
    `merge()` folds the update into the kernel for serving; `unmerge()` undoes
    it.

    Args:
        base_layer: `keras.layers.Dense` or `keras.layers.EinsumDense`.
        adapter_name: str. The adapter this layer belongs to.
        rank: int. Rank of the update.
        alpha: float. The update is scaled by `alpha / rank`.
        dropout: float. Dropout rate on the branch input.
        use_rslora: bool. Scale by `alpha / sqrt(rank)` instead.
            Defaults to `False`.
        shared: `LoraLayer` whose `A` and `B` this layer uses instead of its
            own (parameter sharing across layers). Defaults to `None`.
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.lora import LoraLayer
    >>> layer = LoraLayer(keras.layers.Dense(4), "task", rank=2, alpha=2.0)
    >>> x = np.ones((1, 3), "float32")
    >>> y = layer(x)  # builds; B starts at zero, so y equals the base output
    >>> bool(np.allclose(y, layer.base_layer(x)))
    True
    """

    def __init__(
        self,
        base_layer,
        adapter_name,
        rank,
        alpha,
        dropout=0.0,
        shared=None,
        use_rslora=False,
        **kwargs,
    ):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.use_rslora = use_rslora
        # Not tracked as a sublayer: the owner lives in its own slot.
        set_untracked(self, "shared", shared)

    @property
    def mergeable(self):
        return True

    @property
    def pre_activation(self):
        return True

    @property
    def scale(self):
        return lora_scale(self.alpha, self.rank, self.use_rslora)

    def build(self, input_shape=None):
        self._build_base(input_shape)
        self.spec = EinsumSpec.from_layer(self.projection)
        if self.shared is not None:
            self._share_from(self.shared)
        else:
            self._add_lora_weights()
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="lora_dropout"
        )
        self.built = True

    def _share_from(self, owner):
        if not owner.built:
            owner.build()

        def shape(layer):
            spec = layer.spec
            return (
                layer.rank,
                spec.dims(spec.contracted),
                spec.dims(spec.kernel_out),
            )

        if shape(owner) != shape(self):
            raise ValueError(
                f"Cannot share LoRA weights between {owner.base_layer.name!r} "
                f"and {self.base_layer.name!r}: their shapes differ."
            )
        self.lora_a = owner.lora_a
        self.lora_b = owner.lora_b

    def _add_lora_weights(self):
        self.lora_a = self.add_weight(
            name="lora_a",
            shape=self.spec.dims(self.spec.contracted) + (self.rank,),
            initializer=keras.initializers.HeUniform(),
        )
        self.lora_b = self.add_weight(
            name="lora_b",
            shape=(self.rank,) + self.spec.dims(self.spec.kernel_out),
            initializer="zeros",
        )

    def adapter_call(self, inputs, training=None, gate=None):
        outputs = self.base_layer(inputs, training=training)
        x = self.dropout_layer(inputs, training=training)
        x = ops.einsum(self.spec.down_equation, x, self.lora_a)  # (..., r)
        x = ops.einsum(self.spec.up_equation, x, self.lora_b)
        x = ops.cast(self.scale, x.dtype) * x
        return outputs + apply_gate(gate, x)

    def delta(self):
        """The merged update `scale·A·B`, shaped like the base kernel."""
        delta = ops.einsum(self.spec.delta_equation, self.lora_a, self.lora_b)
        return delta * self.scale

    def merge(self):
        kernel = self.projection.kernel
        kernel.assign(kernel + ops.cast(self.delta(), kernel.dtype))
        self.merged = True

    def unmerge(self):
        kernel = self.projection.kernel
        kernel.assign(kernel - ops.cast(self.delta(), kernel.dtype))
        self.merged = False

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rank": self.rank,
                "alpha": self.alpha,
                "dropout": self.dropout,
                "use_rslora": self.use_rslora,
            }
        )
        return config
