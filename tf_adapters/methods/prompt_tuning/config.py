import dataclasses

from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.validation import check_choice
from tf_adapters.core.validation import check_int

INITS = ("vocab", "random")


@dataclasses.dataclass(kw_only=True)
class PromptTuningConfig(AdapterConfig):
    """Prompt tuning (Lester et al., 2021): learned virtual-token embeddings
    prepended to every input sequence.

    The virtual tokens take token ids `vocabulary_size ... vocabulary_size +
    num_virtual_tokens - 1`; the adapted backbone prepends them itself, and
    strips their positions from its output, so `fit`, `predict` and
    `generate` see the same shapes as the base model. Unlike the other
    methods, a fresh prompt is not the identity: any prepended token shifts
    attention. Disabling the adapter restores the exact base behaviour.

    Args:
        num_virtual_tokens: int. Number of virtual tokens. Defaults to `20`.
        init: str. `"vocab"` starts each virtual token at the embedding of a
            random vocabulary token (seeded); `"random"` draws from
            N(0, 0.02). Defaults to `"vocab"`.
        seed: int. Seed of the initialization. Defaults to `0`.
        trainable_layers: see `AdapterConfig`.

    Example:
    >>> import tf_adapters as tfa
    >>> tfa.PromptTuningConfig(num_virtual_tokens=8).num_virtual_tokens
    8
    """

    method = "prompt_tuning"
    #: The `tf-adapters sweep` winner on the sentiment task (docs/sweep.md).
    learning_rate = 0.01

    num_virtual_tokens: int = 20
    init: str = "vocab"
    seed: int = 0

    def validate(self):
        check_int("num_virtual_tokens", self.num_virtual_tokens, minimum=1)
        check_choice("init", self.init, INITS)
        check_int("seed", self.seed, minimum=0)
