"""Several adapters active at once: `Stack` and `Parallel` (the article's
"layer interaction"; AdapterHub's composition blocks of the same names).

A composition names adapters already on the model. On every layer that
carries some of them:

- `Stack("a", "b")`: the output flows through adapter `a`, then `b` (each
  adapter's update is applied to the output the previous one left).
- `Parallel("a", "b", weights=[w_a, w_b])`: every adapter sees the layer's
  plain output, and their updates are summed, each scaled by its weight
  (default 1: PEFT's several active LoRA adapters).

For adapters on the layer's input side (LoRA, IA3) both orders give the
same result on one layer; they differ for bottleneck adapters, which act on
the layer's output. Compositions serialize (`to_config` / `from_config`)
into the model's config, so `.keras` files keep them.

Example:
>>> import tf_adapters as tfa
>>> tfa.Stack("lang", "task")
Stack('lang', 'task')
>>> tfa.Parallel("a", "b", weights=[0.5, 2.0]).to_config()
{'kind': 'parallel', 'adapters': ['a', 'b'], 'weights': [0.5, 2.0]}
"""

import math

from tf_adapters.core.validation import check_adapter_name

# Methods whose layers are not slot wrappers with an output update.
UNCOMPOSABLE = ("prompt_tuning", "prefix_tuning")


class Composition:
    """Adapters used together; see `Stack` and `Parallel`."""

    kind = ""

    def __init__(self, *adapters):
        if len(adapters) == 1 and isinstance(adapters[0], (list, tuple)):
            adapters = tuple(adapters[0])
        if len(adapters) < 2:
            raise ValueError(
                f"`{type(self).__name__}` needs at least two adapter names. "
                f"Received: {list(adapters)}. To use one adapter, pass its "
                "name to `set_active_adapter`."
            )
        for name in adapters:
            if not isinstance(name, str):
                raise TypeError(
                    f"`{type(self).__name__}` takes adapter names (str); "
                    f"nesting compositions is not supported. Received: "
                    f"{name!r}."
                )
            check_adapter_name(name)
        if len(set(adapters)) != len(adapters):
            raise ValueError(
                f"`{type(self).__name__}` names an adapter twice: "
                f"{list(adapters)}."
            )
        self.adapters = tuple(adapters)

    def weight(self, name):
        """The factor on adapter `name`'s update (1 unless weighted)."""
        return 1.0

    def to_config(self):
        return {"kind": self.kind, "adapters": list(self.adapters)}

    @staticmethod
    def from_config(config):
        """A composition from `to_config()`, or a name (str) unchanged."""
        if config is None or isinstance(config, str):
            return config
        kinds = {cls.kind: cls for cls in (Stack, Parallel)}
        if not isinstance(config, dict) or config.get("kind") not in kinds:
            raise ValueError(
                f"Unknown adapter composition {config!r}; expected a "
                f"config with kind in {sorted(kinds)}."
            )
        config = dict(config)
        cls = kinds[config.pop("kind")]
        return cls(*config.pop("adapters"), **config)

    def __eq__(self, other):
        return type(other) is type(self) and (
            other.to_config() == self.to_config()
        )

    def __hash__(self):
        return hash(repr(self))

    def __repr__(self):
        names = ", ".join(repr(n) for n in self.adapters)
        return f"{type(self).__name__}({names})"


class Stack(Composition):
    """Adapters applied one after the other on every layer.

    Args:
        *adapters: str. Two or more adapter names, in the order the
            outputs flow through them (e.g. a language adapter, then a
            task adapter).

    Example:
    >>> import keras_hub, numpy as np, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> for name in ("lang", "task"):
    ...     _ = tfa.add_adapter(backbone, tfa.BottleneckConfig(), name=name)
    >>> tfa.set_active_adapter(backbone, tfa.Stack("lang", "task"))
    >>> tfa.active_adapter(backbone)
    Stack('lang', 'task')
    """

    kind = "stack"


class Parallel(Composition):
    """Adapters applied side by side: their updates are summed.

    Args:
        *adapters: str. Two or more adapter names.
        weights: list of float, or `None`. One factor per adapter on its
            update. Defaults to `None` (every factor 1).

    Example:
    >>> import tf_adapters as tfa
    >>> block = tfa.Parallel("a", "b", weights=[0.7, 0.3])
    >>> block.weight("b")
    0.3
    """

    kind = "parallel"

    def __init__(self, *adapters, weights=None):
        super().__init__(*adapters)
        if weights is not None:
            weights = list(weights)
            if len(weights) != len(self.adapters):
                raise ValueError(
                    f"`weights` needs one weight per adapter "
                    f"({len(self.adapters)}). Received: {weights}."
                )
            for i, w in enumerate(weights):
                if isinstance(w, bool) or not isinstance(w, (int, float)):
                    raise TypeError(
                        f"`weights[{i}]` must be a number. Received: {w!r}."
                    )
                if not math.isfinite(w):
                    raise ValueError(
                        f"`weights[{i}]` must be finite. Received: {w}."
                    )
            weights = [float(w) for w in weights]
        self.weights = weights

    def weight(self, name):
        if self.weights is None:
            return 1.0
        return self.weights[self.adapters.index(name)]

    def to_config(self):
        config = super().to_config()
        if self.weights is not None:
            config["weights"] = list(self.weights)
        return config

    def __repr__(self):
        text = super().__repr__()
        if self.weights is None:
            return text
        return f"{text[:-1]}, weights={self.weights})"


def check_composable(state, names, what):
    """Raises unless every adapter in `names` can run in a composition."""
    for name in names:
        state.check_known(name)
        entry = state.adapters[name]
        config = entry.config
        reason = None
        if config.method in UNCOMPOSABLE:
            reason = (
                f"it is a {config.method} adapter, which changes the "
                "model's inputs or attention rather than a layer's output"
            )
        elif config.method == "fusion":
            reason = "it is a fusion; activate it by its name instead"
        elif getattr(config, "use_dora", False):
            reason = (
                "it is a DoRA adapter, whose magnitude rescales the whole "
                "layer's output"
            )
        elif entry.merged:
            reason = "it is merged into the base weights; unmerge it first"
        if reason:
            raise ValueError(
                f"Adapter {name!r} cannot be used in {what}: {reason}."
            )
