import keras
from keras import ops

from tf_adapters.compat.layers import set_untracked
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.einsum_spec import einsum
from tf_adapters.core.einsum_spec import scale_along
from tf_adapters.core.routing import apply_gate
from tf_adapters.methods.lora.config import lora_scale
from tf_adapters.methods.lora.init import RESIDUAL_INITS
from tf_adapters.methods.lora.init import check_init
from tf_adapters.methods.lora.init import keras_factors


@keras.saving.register_keras_serializable(package="tf_adapters")
class LoraLayer(AdapterLayer):
    """A `Dense`/`EinsumDense` plus a low-rank branch `scale·(x·A)·B`.

    The branch is computed beside the frozen projection rather than folded into
    its kernel, so training never forms (or differentiates) `W + A·B`.
    `merge()` folds the update into the kernel for serving; `unmerge()` undoes
    it.

    With `use_dora=True` (DoRA, Liu et al. 2024) the adapted kernel is
    `m · (W + ΔW) / ‖W + ΔW‖`: a learned magnitude `m` per output feature
    times the direction of the LoRA-updated kernel, the norm taken over the
    input features and treated as a constant in the backward pass (the
    paper's section 4.3, as PEFT does). `m` starts at `‖W‖`, so a fresh
    DoRA layer is the identity too.

    With `init="pissa"` or `"olora"` the pair starts from the base kernel
    (`tf_adapters.methods.lora.init`); that starting pair `A0·B0` is kept,
    frozen, and subtracted (`ΔW = scale·(A·B − A0·B0)`), so the base kernel
    itself is never changed.

    Args:
        base_layer: `keras.layers.Dense` or `keras.layers.EinsumDense`.
        adapter_name: str. The adapter this layer belongs to.
        rank: int. Rank of the update.
        alpha: float. The update is scaled by `alpha / rank`.
        dropout: float. Dropout rate on the branch input.
        shared: `LoraLayer` whose `A` and `B` this layer uses instead of its
            own (parameter sharing across layers). Defaults to `None`.
        use_rslora: bool. Scale by `alpha / sqrt(rank)` instead.
            Defaults to `False`.
        use_dora: bool. Weight-decomposed LoRA. Defaults to `False`.
        init: str. `"default"` (`A` He-uniform, `B` zero), `"gaussian"`
            (`A` normal with standard deviation `1 / rank`, `B` zero),
            `"pissa"` or `"olora"`. Defaults to `"default"`.
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.lora import LoraLayer
    >>> layer = LoraLayer(keras.layers.Dense(4), "task", rank=2, alpha=2.0)
    >>> x = np.ones((1, 3), "float32")
    >>> y = layer(x)  # builds; B starts at zero, so y equals the base output
    >>> bool(np.allclose(y, layer.base_layer(x)))
    True
    >>> dora = LoraLayer(keras.layers.Dense(4), "task", rank=2, alpha=2.0,
    ...                  use_dora=True, init="pissa")
    >>> bool(np.allclose(dora(x), dora.base_layer(x), atol=1e-5))
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
        use_dora=False,
        init="default",
        **kwargs,
    ):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.use_rslora = use_rslora
        self.use_dora = use_dora
        self.init = check_init(init)
        if shared is not None and init in RESIDUAL_INITS:
            raise ValueError(
                f"`init={init!r}` starts each layer from its own kernel, so "
                "its LoRA weights cannot be shared across layers "
                "(`share_weights`); use init='default' or 'gaussian'."
            )
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

    @property
    def frozen_keys(self):
        """Adapter variables that never train: PiSSA / OLoRA's starting
        pair."""
        keys = ()
        if self.init in RESIDUAL_INITS:
            keys += ("lora_a_init", "lora_b_init")
        return keys

    def build(self, input_shape=None):
        self._build_base(input_shape)
        self.spec = EinsumSpec.from_layer(self.projection)
        if self.init in RESIDUAL_INITS or self.use_dora:
            self._check_float_kernel()
        if self.shared is not None:
            self._share_from(self.shared)
        else:
            self._add_lora_weights()
        if self.init in RESIDUAL_INITS:
            self._add_residual_weights()
        if self.use_dora:
            self._add_dora_weights()
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="lora_dropout"
        )
        self.built = True

    def _check_float_kernel(self):
        mode = getattr(self.projection, "quantization_mode", None)
        if not mode:
            return
        if self.use_dora:
            raise ValueError(
                "DoRA (use_dora=True) reads the float kernel of "
                f"{self.projection.name!r} in every call, and it is quantized "
                f"({mode}). Use plain LoRA on a quantized base, or train DoRA "
                "on the float model and merge it (`merge_and_unload`) before "
                "quantizing."
            )
        raise ValueError(
            f"LoRA with init={self.init!r} starts from the float kernel of "
            f"{self.projection.name!r}, which is quantized ({mode}). Add the "
            "adapter to the float model and quantize afterwards, or use "
            "init='default'."
        )

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

    def _factor_shapes(self):
        spec = self.spec
        return (
            spec.dims(spec.contracted) + (self.rank,),
            (self.rank,) + spec.dims(spec.kernel_out),
        )

    def _add_lora_weights(self):
        a_shape, b_shape = self._factor_shapes()
        if self.init == "gaussian":
            a_init = keras.initializers.RandomNormal(stddev=1.0 / self.rank)
        else:
            a_init = keras.initializers.HeUniform()
        self.lora_a = self.add_weight(
            name="lora_a", shape=a_shape, initializer=a_init
        )
        self.lora_b = self.add_weight(
            name="lora_b", shape=b_shape, initializer="zeros"
        )

    def _add_residual_weights(self):
        a_shape, b_shape = self._factor_shapes()
        a, b = keras_factors(
            self.init,
            ops.convert_to_numpy(self.projection.kernel),
            self.spec,
            self.rank,
            self.scale,
        )
        self.lora_a_init = self.add_weight(
            name="lora_a_init", shape=a_shape, trainable=False
        )
        self.lora_b_init = self.add_weight(
            name="lora_b_init", shape=b_shape, trainable=False
        )
        for var, value in (
            (self.lora_a, a),
            (self.lora_b, b),
            (self.lora_a_init, a),
            (self.lora_b_init, b),
        ):
            var.assign(value)

    def _add_dora_weights(self):
        out_shape = self.spec.dims(self.spec.kernel_out)
        self.lora_magnitude = self.add_weight(
            name="lora_magnitude", shape=out_shape, initializer="ones"
        )
        self.lora_magnitude.assign(self._kernel_norm())
        # The norm of W + ΔW while merged (to unmerge); not checkpointed.
        self.dora_merged_norm = self.add_weight(
            name="dora_merged_norm",
            shape=out_shape,
            initializer="ones",
            trainable=False,
        )

    def adapter_variables(self):
        found = super().adapter_variables()
        found.pop("dora_merged_norm", None)
        return found

    def _branch(self, x, a, b):
        x = einsum(self.spec.down_equation, x, a)  # (..., r)
        return einsum(self.spec.up_equation, x, b)

    def _kernel_norm(self, kernel=None):
        """`‖W + ΔW‖` over the input features, per output feature."""
        if kernel is None:
            kernel = ops.cast(self.projection.kernel, "float32")
        # In float32 also where a mixed policy autocasts the factors.
        squares = ops.square(kernel + ops.cast(self.delta(), "float32"))
        return ops.sqrt(ops.einsum(self.spec.kernel_norm_equation, squares))

    def _scale_outputs(self, outputs, factor):
        factor = ops.cast(factor, outputs.dtype)
        return scale_along(
            outputs, self.spec.output, factor, self.spec.kernel_out
        )

    def update_output(self, inputs, outputs, training=None, gate=None):
        x = self.dropout_layer(inputs, training=training)
        update = self._branch(x, self.lora_a, self.lora_b)
        if self.init in RESIDUAL_INITS:
            update = update - self._branch(
                x, self.lora_a_init, self.lora_b_init
            )
        update = ops.cast(self.scale, update.dtype) * update
        if self.use_dora:
            self._check_float_kernel()  # quantized after the adapter came
            # y = b + m/‖W+ΔW‖ · (x·W + x·ΔW), written as an update of y.
            norm = ops.stop_gradient(self._kernel_norm())
            factor = ops.cast(self.lora_magnitude, "float32") / norm
            plain = outputs
            if getattr(self.projection, "bias", None) is not None:
                plain = outputs - ops.cast(self.projection.bias, outputs.dtype)
            update = self._scale_outputs(plain, factor - 1.0) + (
                self._scale_outputs(update, factor)
            )
        return outputs + apply_gate(gate, update)

    def delta(self):
        """The merged update `scale·(A·B − A0·B0)`, shaped like the base
        kernel (`A0·B0` is zero unless `init` is PiSSA or OLoRA). With DoRA
        the merged kernel also rescales `W`: see `merge`."""
        equation = self.spec.delta_equation
        delta = ops.einsum(equation, self.lora_a, self.lora_b)
        if self.init in RESIDUAL_INITS:
            delta = delta - ops.einsum(
                equation, self.lora_a_init, self.lora_b_init
            )
        return delta * self.scale

    def merge(self):
        kernel = self.projection.kernel
        if not self.use_dora:
            kernel.assign(kernel + ops.cast(self.delta(), kernel.dtype))
        else:
            weight = ops.cast(kernel, "float32") + self.delta()
            norm = self._kernel_norm(ops.cast(kernel, "float32"))
            self.dora_merged_norm.assign(norm)
            factor = self.lora_magnitude / norm
            merged = scale_along(
                weight, self.spec.kernel, factor, self.spec.kernel_out
            )
            kernel.assign(ops.cast(merged, kernel.dtype))
        self.merged = True

    def unmerge(self):
        kernel = self.projection.kernel
        if not self.use_dora:
            kernel.assign(kernel - ops.cast(self.delta(), kernel.dtype))
        else:
            factor = self.dora_merged_norm / self.lora_magnitude
            weight = scale_along(
                ops.cast(kernel, "float32"),
                self.spec.kernel,
                factor,
                self.spec.kernel_out,
            )
            kernel.assign(ops.cast(weight - self.delta(), kernel.dtype))
        self.merged = False

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rank": self.rank,
                "alpha": self.alpha,
                "dropout": self.dropout,
                "use_rslora": self.use_rslora,
                "use_dora": self.use_dora,
                "init": self.init,
            }
        )
        return config
