"""The base of every adapter config: a dataclass validated when built."""

import dataclasses
import json
from typing import ClassVar

from tf_adapters.core.validation import build_dataclass
from tf_adapters.core.validation import check_patterns


@dataclasses.dataclass(kw_only=True)
class AdapterConfig:
    """Fields every adapter method shares.

    Args:
        trainable_layers: list of str. Base-model layers (names or regular
            expressions over layer paths) to train along with the adapter,
            e.g. the final layer norm. Their weights are saved in the adapter
            checkpoint. Defaults to `None` (none).
    """

    method: ClassVar[str] = ""
    #: Adam learning rate of a run that sets none (`--learning-rate`
    #: unset): the winner of `tf-adapters sweep` for the method on the
    #: built-in sentiment task (docs/sweep.md). Read it with
    #: `default_learning_rate()`, which a method may refine per variant.
    learning_rate: ClassVar[float] = 1e-3

    trainable_layers: list | None = None

    def __post_init__(self):
        self.trainable_layers = check_patterns(
            "trainable_layers", self.trainable_layers
        )
        self.validate()

    def validate(self):
        """Checks method-specific fields; raises `ValueError`/`TypeError`."""

    def starts_as_base(self):
        """Whether a fresh adapter leaves the model's outputs exactly, bit
        for bit, as the base's (its update starts as an exact zero, or a
        scale as an exact one). The fine-tuning run then evaluates the
        frozen base through the freshly adapted model, and the base's and
        the adapted model's evaluations share one compiled prediction.
        `False` unless a method says so."""
        return False

    def default_learning_rate(self):
        """The Adam learning rate a run trains this adapter with when it
        sets none (the class's `learning_rate`)."""
        return self.learning_rate

    def to_dict(self):
        return {"method": self.method, **dataclasses.asdict(self)}

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data):
        """Builds a config from `to_dict()` output; unknown keys are errors."""
        if not isinstance(data, dict):
            raise TypeError(
                f"An adapter config must be a dict. Received: {data!r}."
            )
        data = dict(data)
        method = data.pop("method", cls.method)
        if method != cls.method:
            raise ValueError(
                f"This is a {method!r} config, not {cls.method!r}."
            )
        return build_dataclass(cls, data, cls.__name__)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))
