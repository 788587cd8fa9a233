import dataclasses

from tf_adapters.core.config import AdapterConfig
from tf_adapters.core.validation import check_patterns


@dataclasses.dataclass(kw_only=True)
class IA3Config(AdapterConfig):
    """IA3 (Liu et al., 2022): learned rescaling of keys, values and the
    feed-forward activation, each vector starting at one (the identity).

    Args:
        target_layers: list of str. Projections to rescale. Defaults to
            `None`: the family default (key, value, feed-forward output).
        feedforward_layers: list of str. The subset of `target_layers` whose
            *input* is rescaled (the feed-forward activation entering the
            output projection); the others have their output rescaled.
            Defaults to `None`: the family default.
        exclude: list of str. Patterns to leave out. Defaults to `None`.
        trainable_layers: see `AdapterConfig`.

    Example:
    >>> import tf_adapters as tfa
    >>> tfa.IA3Config(target_layers=["key", "value"]).feedforward_layers
    """

    method = "ia3"
    #: The `tf-adapters sweep` winner on the sentiment task (docs/sweep.md).
    learning_rate = 0.01

    target_layers: list | None = None
    feedforward_layers: list | None = None
    exclude: list | None = None

    def validate(self):
        self.target_layers = check_patterns("target_layers", self.target_layers)
        self.feedforward_layers = check_patterns(
            "feedforward_layers", self.feedforward_layers
        )
        self.exclude = check_patterns("exclude", self.exclude)
