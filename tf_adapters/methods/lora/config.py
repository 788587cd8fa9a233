import dataclasses

from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.validation import check_bool
from tf_adapters.core.validation import check_float
from tf_adapters.core.validation import check_int
from tf_adapters.core.validation import check_patterns


@dataclasses.dataclass(kw_only=True)
class LoraConfig(AdapterConfig):
    """Low-rank adaptation (Hu et al., 2021) of `Dense`/`EinsumDense` layers.

    Each targeted projection `y = x·W` becomes `y = x·W + (alpha/rank)·x·A·B`
    with `A` random and `B` zero, so a fresh adapter is the identity.

    Args:
        rank: int. Rank of the update. Defaults to `8`.
        alpha: float. Scale numerator; the update is scaled by
            `alpha / rank`. Defaults to `None`, meaning `alpha = 2 * rank`
            (a scale of 2, the setting the main job and the tutorials were
            measured with).
        dropout: float. Dropout on the branch input during training.
            Defaults to `0.0`.
        target_layers: list of str. Layer names (path suffixes) or regular
            expressions (full match over paths such as
            `transformer_layer_0/self_attention/query`). Defaults to `None`:
            the model family's default (query and value projections).
        exclude: list of str. Patterns to leave out. Defaults to `None`.
        share_weights: bool. One `A`, `B` pair per projection role (e.g.
            every layer's query projection) shared by all transformer
            layers, dividing the adapter's parameters by the number of
            layers. Defaults to `False`.
        trainable_layers: see `AdapterConfig`.

    Example:
    >>> import tf_adapters as tfa
    >>> cfg = tfa.LoraConfig(rank=4, alpha=8, target_layers=["query"])
    >>> cfg.scale
    2.0
    >>> tfa.LoraConfig.from_json(cfg.to_json()) == cfg
    True
    """

    method = "lora"

    rank: int = 8
    alpha: float | None = None
    dropout: float = 0.0
    target_layers: list | None = None
    exclude: list | None = None
    share_weights: bool = False

    def validate(self):
        check_int("rank", self.rank, minimum=1)
        if self.alpha is None:
            self.alpha = 2.0 * self.rank
        self.alpha = check_float(
            "alpha", self.alpha, minimum=0, strict_min=True
        )
        self.dropout = check_float("dropout", self.dropout, 0.0, 0.99)
        self.target_layers = check_patterns("target_layers", self.target_layers)
        self.exclude = check_patterns("exclude", self.exclude)
        check_bool("share_weights", self.share_weights)

    @property
    def scale(self):
        return self.alpha / self.rank
