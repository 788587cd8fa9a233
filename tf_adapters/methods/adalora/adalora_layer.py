import keras
from keras import ops

from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.einsum_spec import einsum
from tf_adapters.core.routing import apply_gate
from tf_adapters.methods.adalora.config import adalora_scale
from tf_adapters.methods.adalora.orthogonal import OrthogonalPenalty


@keras.saving.register_keras_serializable(package="tf_adapters")
class AdaLoraLayer(AdapterLayer):
    """A `Dense`/`EinsumDense` plus AdaLoRA's branch `scale·((x·Q)·Λ)·P`.

    The update is in SVD form, `ΔW = Q·diag(Λ ⊙ mask)·P · scale` in Keras's
    `(in, out)` layout (PEFT's `lora_B @ (lora_A * lora_E)` in PyTorch's):
    `lora_a` (`Q`, `(in..., rank)`) and `lora_b` (`P`, `(rank, out...)`)
    start as small random values, `lora_e` (`Λ`, `(rank,)`) at zero, so a
    fresh layer is the identity exactly. `scale` is PEFT's
    `alpha / (init_rank + 1e-5)`: it stays that of the initial rank when
    triplets are masked or a checkpoint stores fewer of them.

    `rank_mask` (not trained) is the fixed mask of AdaLoRA's final phase:
    a triplet whose mask is zero has no effect at all, whatever its
    weights. Before that phase, masking is PEFT's: `AdaLoraCallback` sets
    the singular value of a masked triplet to zero, and training may bring
    it back. `lora_a` and `lora_b` carry the orthogonality penalty as
    Keras regularizers (`orth_reg_weight` each).

    Args:
        base_layer: `keras.layers.Dense` or `keras.layers.EinsumDense`.
        adapter_name: str. The adapter this layer belongs to.
        rank: int. Triplets stored (may be `0`).
        alpha: float. The update is scaled by `alpha / init_rank`.
        init_rank: int. The rank the adapter started with, which sets the
            scale. Defaults to `None`: `rank`.
        dropout: float. Dropout rate on the branch input.
            Defaults to `0.0`.
        orth_reg_weight: float. Weight of the orthogonality penalty on
            each of `lora_a` and `lora_b` (`tfa.AdaLoraConfig`'s, divided
            by the adapter's number of such matrices, which makes PEFT's
            mean). Defaults to `0.0` (none).
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.adalora.adalora_layer import AdaLoraLayer
    >>> layer = AdaLoraLayer(keras.layers.Dense(4), "task", rank=3,
    ...                      alpha=8.0, orth_reg_weight=0.25)
    >>> x = np.ones((2, 5), "float32")
    >>> bool(np.array_equal(layer(x), layer.base_layer(x)))  # Λ = 0
    True
    >>> _ = layer.lora_e.assign([1.0, 2.0, 3.0])
    >>> _ = layer.rank_mask.assign([1.0, 0.0, 1.0])  # triplet 1 masked
    >>> layer.kept_rank, len(layer.losses)  # a penalty on P and on Q
    (2, 2)
    """

    def __init__(
        self,
        base_layer,
        adapter_name,
        rank,
        alpha,
        init_rank=None,
        dropout=0.0,
        orth_reg_weight=0.0,
        **kwargs,
    ):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.rank = rank
        self.alpha = alpha
        self.init_rank = rank if init_rank is None else init_rank
        self.dropout = dropout
        self.orth_reg_weight = orth_reg_weight

    @property
    def mergeable(self):
        return True

    @property
    def pre_activation(self):
        return True

    @property
    def scale(self):
        return adalora_scale(self.alpha, self.init_rank)

    @property
    def kept_rank(self):
        """Triplets the mask keeps."""
        return int(ops.convert_to_numpy(ops.sum(self.rank_mask)))

    def build(self, input_shape=None):
        self._build_base(input_shape)
        self.spec = EinsumSpec.from_layer(self.projection)
        spec, rank = self.spec, self.rank
        penalty = self.orth_reg_weight > 0
        # PEFT's `reset_lora_parameters`: A, B ~ N(0, 0.02), E = 0.
        self.lora_a = self.add_weight(
            name="lora_a",
            shape=spec.dims(spec.contracted) + (rank,),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            regularizer=OrthogonalPenalty(self.orth_reg_weight)
            if penalty
            else None,
        )
        self.lora_e = self.add_weight(
            name="lora_e", shape=(rank,), initializer="zeros"
        )
        self.lora_b = self.add_weight(
            name="lora_b",
            shape=(rank,) + spec.dims(spec.kernel_out),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            regularizer=OrthogonalPenalty(self.orth_reg_weight, True)
            if penalty
            else None,
        )
        self.rank_mask = self.add_weight(
            name="rank_mask", shape=(rank,), initializer="ones", trainable=False
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="lora_dropout"
        )
        self.built = True

    def adapter_variables(self):
        found = super().adapter_variables()
        # Checkpoints keep the unmasked triplets only, so no mask.
        found.pop("rank_mask", None)
        return found

    def singular_values(self):
        """`Λ ⊙ mask`, `(rank,)`: what the update uses."""
        return self.lora_e * self.rank_mask

    def update_output(self, inputs, outputs, training=None, gate=None):
        x = self.dropout_layer(inputs, training=training)
        x = einsum(self.spec.down_equation, x, self.lora_a)  # (..., r)
        x = x * ops.cast(self.singular_values(), x.dtype)
        update = einsum(self.spec.up_equation, x, self.lora_b)
        update = ops.cast(self.scale, update.dtype) * update
        return outputs + apply_gate(gate, update)

    def delta(self):
        """The merged update `scale·Q·diag(Λ ⊙ mask)·P`, shaped like the
        base kernel."""
        shape = (self.rank,) + (1,) * (len(self.lora_b.shape) - 1)
        values = ops.reshape(self.singular_values(), shape)
        delta = ops.einsum(
            self.spec.delta_equation, self.lora_a, values * self.lora_b
        )
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
                "init_rank": self.init_rank,
                "dropout": self.dropout,
                "orth_reg_weight": self.orth_reg_weight,
            }
        )
        return config
