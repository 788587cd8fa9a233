import dataclasses
from typing import ClassVar

from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.validation import check_bool
from tf_adapters.core.validation import check_choice
from tf_adapters.core.validation import check_float
from tf_adapters.core.validation import check_int
from tf_adapters.core.validation import check_patterns

VARIANTS = ("houlsby", "pfeiffer", "parallel")
ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "swish", "linear")


@dataclasses.dataclass(kw_only=True)
class BottleneckConfig(AdapterConfig):
    """Bottleneck adapters: down-project, nonlinearity, up-project, add.

    Variants:
    - `"houlsby"` (Houlsby et al., 2019): after the attention output
      projection and after the feed-forward output projection, before each
      residual add.
    - `"pfeiffer"` (Pfeiffer et al., 2020): after the feed-forward output only.
    - `"parallel"` (He et al., 2022): beside the feed-forward block; its input
      is the feed-forward input and its output is added to the feed-forward
      output.

    The up-projection starts at zero, so a fresh adapter is the identity.

    Args:
        variant: str. One of `"houlsby"`, `"pfeiffer"`, `"parallel"`.
            Defaults to `"houlsby"`.
        bottleneck_size: int. Width of the bottleneck. Defaults to `None`:
            `hidden_dim // reduction_factor`.
        reduction_factor: int. Used when `bottleneck_size` is `None`.
            Defaults to `16`.
        activation: str. Defaults to `"relu"`.
        layer_norm: bool. Layer-normalize the adapter input. Defaults to
            `False`.
        scaling: float. Multiplies the adapter output. Defaults to `1.0`.
        target_layers: list of str. Output projections to adapt. Defaults to
            `None`: the family default for the variant.
        exclude: list of str. Patterns to leave out. Defaults to `None`.
        parallel_input_layer: str. For `"parallel"`: the name of the first
            feed-forward projection in the same block, whose input the adapter
            reads. Defaults to `None`: the family default.
        share_weights: bool. One bottleneck block per target role shared by
            all transformer layers, dividing the adapter's parameters by the
            number of layers. Defaults to `False`.
        trainable_layers: see `AdapterConfig`.

    Example:
    >>> import tf_adapters as tfa
    >>> tfa.BottleneckConfig(variant="pfeiffer", bottleneck_size=16).variant
    'pfeiffer'
    """

    method = "bottleneck"
    #: Per variant: where each adapter sits changes the scale of what it
    #: sees, so each has its own default (docs/sweep.md; Houlsby's from
    #: docs/sweep_houlsby.md, 3 seeds at the current prompt).
    learning_rates: ClassVar[dict] = {
        "houlsby": 1e-4,
        "pfeiffer": 3e-4,
        "parallel": 1e-3,
    }

    variant: str = "houlsby"
    bottleneck_size: int | None = None
    reduction_factor: int = 16
    activation: str = "relu"
    layer_norm: bool = False
    scaling: float = 1.0
    target_layers: list | None = None
    exclude: list | None = None
    parallel_input_layer: str | None = None
    share_weights: bool = False

    def starts_as_base(self):
        return True  # the up-projection starts at exactly zero

    def validate(self):
        check_choice("variant", self.variant, VARIANTS)
        if self.bottleneck_size is not None:
            check_int("bottleneck_size", self.bottleneck_size, minimum=1)
        check_int("reduction_factor", self.reduction_factor, minimum=1)
        check_choice("activation", self.activation, ACTIVATIONS)
        if not isinstance(self.layer_norm, bool):
            raise TypeError(
                "`layer_norm` must be a bool. "
                f"Received: layer_norm={self.layer_norm!r}."
            )
        self.scaling = check_float("scaling", self.scaling)
        self.target_layers = check_patterns("target_layers", self.target_layers)
        self.exclude = check_patterns("exclude", self.exclude)
        check_bool("share_weights", self.share_weights)
        if self.parallel_input_layer is not None:
            check_patterns("parallel_input_layer", [self.parallel_input_layer])
            if self.variant != "parallel":
                raise ValueError(
                    "`parallel_input_layer` is only used by "
                    f"variant='parallel'. Received: variant={self.variant!r}."
                )

    def default_learning_rate(self):
        return self.learning_rates[self.variant]

    def size_for(self, hidden_dim):
        """Bottleneck width for a layer of `hidden_dim` features."""
        size = self.bottleneck_size or max(
            1, hidden_dim // self.reduction_factor
        )
        if size > hidden_dim:
            raise ValueError(
                f"`bottleneck_size` ({size}) must not exceed the hidden size "
                f"of the adapted layer ({hidden_dim}); pass a smaller "
                "`bottleneck_size` or a larger `reduction_factor`."
            )
        return size
