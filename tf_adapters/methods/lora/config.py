import dataclasses
import math

from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.path_patterns import first_match
from tf_adapters.core.validation import check_bool
from tf_adapters.core.validation import check_float
from tf_adapters.core.validation import check_int
from tf_adapters.core.validation import check_pattern_map
from tf_adapters.core.validation import check_patterns
from tf_adapters.methods.lora.init import RESIDUAL_INITS
from tf_adapters.methods.lora.init import check_init


@dataclasses.dataclass(kw_only=True)
class LoraConfig(AdapterConfig):
    """Low-rank adaptation (Hu et al., 2021) of `Dense`/`EinsumDense` layers.

    Each targeted projection `y = x·W` becomes `y = x·W + (alpha/rank)·x·A·B`
    with `A` random and `B` zero, so a fresh adapter is the identity. The
    variants PEFT users know are options: DoRA (`use_dora`), rsLoRA
    (`use_rslora`), PiSSA / OLoRA starts (`init`), every linear layer
    (`target_layers="all-linear"`) and per-layer ranks (`rank_pattern`).

    Args:
        rank: int. Rank of the update. Defaults to `8`.
        alpha: float. Scale numerator; the update is scaled by
            `alpha / rank`. Defaults to `None`, meaning `alpha = 2 * rank`
            (a scale of 2, the setting the main job and the tutorials were
            measured with).
        dropout: float. Dropout on the branch input during training.
            Defaults to `0.0`.
        target_layers: list of str, or `"all-linear"`. Layer names (path
            suffixes) or regular expressions (full match over paths such as
            `transformer_layer_0/self_attention/query`); `"all-linear"` (as
            in PEFT) is every `Dense` / `EinsumDense` of the decoder blocks,
            not the output head. Defaults to `None`: the model family's
            default (query and value projections).
        exclude: list of str. Patterns to leave out. Defaults to `None`.
        share_weights: bool. One `A`, `B` pair per projection role (e.g.
            every layer's query projection) shared by all transformer
            layers, dividing the adapter's parameters by the number of
            layers. Defaults to `False`.
        use_rslora: bool. Rank-stabilized LoRA (Kalajdzievski, 2023): scale
            the update by `alpha / sqrt(rank)` instead of `alpha / rank`.
            Defaults to `False`.
        rank_pattern: dict of str to int. Per-layer ranks: a layer whose path
            matches a key (a layer name, path suffix or regular expression,
            as in `target_layers`; the first matching key wins) gets that
            rank instead of `rank`. PEFT's option of the same name.
            Defaults to `None`.
        alpha_pattern: dict of str to float. Per-layer `alpha`, matched like
            `rank_pattern`. Defaults to `None`.
        use_dora: bool. Weight-decomposed LoRA (DoRA, Liu et al. 2024): a
            learned magnitude per output feature times the direction of the
            LoRA-updated kernel. Still the identity at the start, and it
            merges exactly. Defaults to `False`.
        init: str. How `A` and `B` start: `"default"` (`A` He-uniform, `B`
            zero), `"gaussian"` (`A` normal with standard deviation
            `1 / rank`, `B` zero), `"pissa"` (the kernel's top `rank`
            singular directions, Meng et al. 2024) or `"olora"` (its first
            `rank` QR columns, Büyükakyüz 2024). PiSSA and OLoRA start the
            adapter from the base layer's own parameters (the second
            reading of the article's parameter sharing) and subtract that
            starting product, so they too begin as the identity.
            Defaults to `"default"`.
        trainable_layers: see `AdapterConfig`.

    Example:
    >>> import tf_adapters as tfa
    >>> cfg = tfa.LoraConfig(rank=4, alpha=8, target_layers=["query"])
    >>> cfg.scale
    2.0
    >>> tfa.LoraConfig.from_json(cfg.to_json()) == cfg
    True
    >>> dora = tfa.LoraConfig(rank=8, use_dora=True, init="pissa",
    ...                       target_layers="all-linear")
    >>> dora.target_layers
    ['all-linear']
    """

    method = "lora"

    rank: int = 8
    alpha: float | None = None
    dropout: float = 0.0
    target_layers: list | None = None
    exclude: list | None = None
    share_weights: bool = False
    use_rslora: bool = False
    rank_pattern: dict | None = None
    alpha_pattern: dict | None = None
    use_dora: bool = False
    init: str = "default"

    def starts_as_base(self):
        # `B` starts at exactly zero; DoRA renormalises the kernel and
        # PiSSA / OLoRA subtract their start from it (equal only up to
        # rounding).
        return not self.use_dora and self.init not in RESIDUAL_INITS

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
        check_bool("use_rslora", self.use_rslora)
        check_bool("use_dora", self.use_dora)
        check_init(self.init)
        if self.share_weights and self.init in RESIDUAL_INITS:
            raise ValueError(
                f"`init={self.init!r}` starts each layer from its own kernel, "
                "so it cannot share weights across layers; set "
                "share_weights=False or init='default'."
            )
        self.rank_pattern = check_pattern_map(
            "rank_pattern",
            self.rank_pattern,
            lambda key, v: check_int(key, v, minimum=1),
        )
        self.alpha_pattern = check_pattern_map(
            "alpha_pattern",
            self.alpha_pattern,
            lambda key, v: check_float(key, v, minimum=0, strict_min=True),
        )

    def rank_for(self, path):
        """The rank of the layer at `path` (`rank_pattern`, else `rank`)."""
        return first_match(self.rank_pattern, path, self.rank)

    def alpha_for(self, path):
        """The alpha of the layer at `path` (`alpha_pattern`, else `alpha`)."""
        return first_match(self.alpha_pattern, path, self.alpha)

    @property
    def scale(self):
        """The update's scale for a layer of rank `rank` and `alpha`."""
        return lora_scale(self.alpha, self.rank, self.use_rslora)


def lora_scale(alpha, rank, use_rslora=False):
    """`alpha / rank`, or `alpha / sqrt(rank)` for rank-stabilized LoRA."""
    return alpha / (math.sqrt(rank) if use_rslora else rank)
