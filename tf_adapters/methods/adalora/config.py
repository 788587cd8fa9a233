import dataclasses

from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.path_patterns import first_match
from tf_adapters.core.validation import check_float
from tf_adapters.core.validation import check_int
from tf_adapters.core.validation import check_pattern_map
from tf_adapters.core.validation import check_patterns


@dataclasses.dataclass(kw_only=True)
class AdaLoraConfig(AdapterConfig):
    """AdaLoRA (Zhang et al. 2023, "Adaptive Budget Allocation for
    Parameter-Efficient Fine-Tuning"): LoRA in SVD form whose rank budget
    moves, during training, to the projections that matter most.

    Each targeted projection gets `ΔW = P·diag(Λ)·Q · alpha / init_rank`
    with `init_rank` triplets `(P column, Λ value, Q row)`; `Λ` starts at
    zero, so a fresh adapter is the identity. `tfa.AdaLoraCallback` scores
    every triplet during `fit` and masks the least important ones until
    `target_rank` triplets per projection remain on average, following a
    cubic schedule: `tinit` warm-up steps at the full budget, a decreasing
    budget until step `total_step - tfinal`, then a fixed mask. The fields
    and defaults are PEFT's `AdaLoraConfig` (`init_r`, `target_r`,
    `deltaT`, `lora_alpha`, `lora_dropout`, `target_modules` there).

    Args:
        init_rank: int. Triplets per projection at the start.
            Defaults to `12`.
        target_rank: int. Average triplets per projection at the end: the
            final budget is `target_rank` times the number of projections.
            Defaults to `8`.
        tinit: int. Warm-up steps before any triplet is masked.
            Defaults to `0`.
        tfinal: int. Steps at the end with the final mask fixed.
            Defaults to `0`.
        delta_t: int. Steps between two budget allocations.
            Defaults to `1`.
        beta1: float. In `[0, 1)`. Smoothing of the sensitivity's moving
            average. Defaults to `0.85`.
        beta2: float. In `[0, 1)`. Smoothing of its uncertainty.
            Defaults to `0.85`.
        orth_reg_weight: float. Weight of the orthogonality penalty on `P`
            and `Q` added to the training loss. Defaults to `0.5`.
        alpha: float. The update is scaled by `alpha / init_rank`.
            Defaults to `8.0` (PEFT's `lora_alpha`).
        dropout: float. Dropout on the branch input during training.
            Defaults to `0.0`.
        target_layers: list of str, or `"all-linear"`. Projections to adapt,
            as in `tfa.LoraConfig`. Defaults to `None`: the model family's
            LoRA default (query and value projections).
        exclude: list of str. Patterns to leave out. Defaults to `None`.
        total_step: int. The number of training steps the schedule spans.
            Defaults to `None`: `fit`'s `epochs * steps_per_epoch`.
        rank_pattern: dict of str to int. Triplets stored per layer (a
            path, or a pattern as in `tfa.LoraConfig`); `save_adapter`
            writes it for the masked triplets it leaves out. Defaults to
            `None`: `init_rank` everywhere.
        trainable_layers: see `AdapterConfig`.

    Example:
    >>> from tf_adapters.methods.adalora import AdaLoraConfig
    >>> cfg = AdaLoraConfig(init_rank=6, target_rank=2, total_step=100,
    ...                     tinit=10, tfinal=20, target_layers=["query"])
    >>> round(cfg.scale, 4)  # alpha / init_rank
    1.3333
    >>> AdaLoraConfig.from_json(cfg.to_json()) == cfg
    True
    >>> AdaLoraConfig(init_rank=4, target_rank=6)
    Traceback (most recent call last):
    ...
    ValueError: `target_rank` must be <= init_rank (4). Received: target_rank=6.
    """

    method = "adalora"
    #: The `tf-adapters sweep` winner on the sentiment task (docs/sweep.md).
    learning_rate = 0.03

    init_rank: int = 12
    target_rank: int = 8
    tinit: int = 0
    tfinal: int = 0
    delta_t: int = 1
    beta1: float = 0.85
    beta2: float = 0.85
    orth_reg_weight: float = 0.5
    alpha: float = 8.0
    dropout: float = 0.0
    target_layers: list | None = None
    exclude: list | None = None
    total_step: int | None = None
    rank_pattern: dict | None = None

    def starts_as_base(self):
        return True  # the singular values start at exactly zero

    def validate(self):
        check_int("init_rank", self.init_rank, minimum=1)
        check_int("target_rank", self.target_rank, minimum=1)
        if self.target_rank > self.init_rank:
            raise ValueError(
                f"`target_rank` must be <= init_rank ({self.init_rank}). "
                f"Received: target_rank={self.target_rank}."
            )
        check_int("tinit", self.tinit, minimum=0)
        check_int("tfinal", self.tfinal, minimum=0)
        check_int("delta_t", self.delta_t, minimum=1)
        for name in ("beta1", "beta2"):
            value = check_float(name, getattr(self, name), minimum=0.0)
            if value >= 1.0:
                raise ValueError(
                    f"`{name}` must be in [0, 1). Received: {name}={value}."
                )
            setattr(self, name, value)
        self.orth_reg_weight = check_float(
            "orth_reg_weight", self.orth_reg_weight, minimum=0.0
        )
        self.alpha = check_float(
            "alpha", self.alpha, minimum=0, strict_min=True
        )
        self.dropout = check_float("dropout", self.dropout, 0.0, 0.99)
        self.target_layers = check_patterns("target_layers", self.target_layers)
        self.exclude = check_patterns("exclude", self.exclude)
        if self.total_step is not None:
            check_int("total_step", self.total_step, minimum=1)
            check_schedule(self.tinit, self.tfinal, self.total_step)
        self.rank_pattern = check_pattern_map(
            "rank_pattern",
            self.rank_pattern,
            lambda key, v: check_int(key, v, 0, self.init_rank),
        )

    def rank_for(self, path):
        """Triplets stored at `path` (`rank_pattern`, else `init_rank`)."""
        if self.rank_pattern and path in self.rank_pattern:
            return self.rank_pattern[path]
        return first_match(self.rank_pattern, path, self.init_rank)

    @property
    def scale(self):
        """The update's scale, PEFT's `lora_alpha / (ranknum + 1e-5)`."""
        return adalora_scale(self.alpha, self.init_rank)


def adalora_scale(alpha, init_rank):
    """`alpha / init_rank`, with PEFT's `1e-5` added to the rank."""
    return alpha / (init_rank + 1e-5)


def check_schedule(tinit, tfinal, total_step):
    """Refuses a schedule with no budget phase (PEFT's rule)."""
    if tinit + tfinal >= total_step:
        raise ValueError(
            "AdaLoRA needs steps between its warm-up and its final phase: "
            "`tinit + tfinal` must be < total_step. Received: "
            f"tinit={tinit}, tfinal={tfinal}, total_step={total_step}."
        )
