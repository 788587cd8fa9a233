import dataclasses

from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.validation import check_adapter_name
from tf_adapters.core.validation import check_float


@dataclasses.dataclass(kw_only=True)
class FusionConfig(AdapterConfig):
    """AdapterFusion (Pfeiffer et al., 2021): a small attention on every
    adapted layer that learns how to mix several trained, frozen adapters.

    On each layer the query is the layer's plain output, and the keys and
    values are the adapters' outputs (their updates): the layer's output
    becomes `y + Σ_j softmax_j(q(y)·k(Δ_j) / T) · v(Δ_j)`. The value
    projection starts as the identity and the query / key projections
    near zero, so a new fusion starts as the average of its adapters.

    Args:
        adapters: list of str. The adapters to mix, already on the model
            (trained first). They stay frozen; only the fusion trains.
        temperature: float > 0. The softmax temperature `T`. Defaults to
            `1.0`.
        init_std: float >= 0. Standard deviation of the query and key
            kernels' initial values. Defaults to `0.02`.
        trainable_layers: see `AdapterConfig`.

    Example:
    >>> import tf_adapters as tfa
    >>> tfa.FusionConfig(adapters=["sentiment", "topic"]).temperature
    1.0
    """

    method = "fusion"

    adapters: list = dataclasses.field(default_factory=list)
    temperature: float = 1.0
    init_std: float = 0.02

    def validate(self):
        if isinstance(self.adapters, str) or not isinstance(
            self.adapters, (list, tuple)
        ):
            raise TypeError(
                "`adapters` must be a list of adapter names. Received: "
                f"adapters={self.adapters!r}."
            )
        self.adapters = [check_adapter_name(a) for a in self.adapters]
        if not self.adapters:
            raise ValueError(
                "`adapters` must name at least one trained adapter to fuse. "
                "Received: adapters=[]."
            )
        if len(set(self.adapters)) != len(self.adapters):
            raise ValueError(
                f"`adapters` names an adapter twice: {self.adapters}."
            )
        self.temperature = check_float(
            "temperature", self.temperature, minimum=0.0, strict_min=True
        )
        self.init_std = check_float("init_std", self.init_std, minimum=0.0)
