"""The adapters on one backbone: names, configs, which is active, merged.

The state lives on the backbone object itself (untracked by Keras: it is
bookkeeping, not weights) and is written into the backbone's `get_config()`
by `AdaptedBackbone`, so `.keras` files rebuild the same adapters.
"""

import dataclasses

from tf_adapters.compat.layers import del_untracked
from tf_adapters.compat.layers import get_untracked
from tf_adapters.compat.layers import set_untracked

STATE_ATTR = "tfa_state"
STATE_FORMAT_VERSION = 1


@dataclasses.dataclass
class AdapterEntry:
    config: object
    merged: bool = False


@dataclasses.dataclass
class AdapterState:
    """The adapters on one backbone, in the order they were added."""

    adapters: dict = dataclasses.field(default_factory=dict)
    active: str | None = None
    enabled: bool = True
    # Several adapters at once (`Stack` / `Parallel`; `active` is then
    # `None`), and which of them train (`None`: all).
    composition: object = None
    trainable: tuple | None = None

    def to_config(self):
        return {
            "format_version": STATE_FORMAT_VERSION,
            "adapters": [
                {"name": n, "config": e.config.to_dict(), "merged": e.merged}
                for n, e in self.adapters.items()
            ],
            "active": self.active,
            "enabled": self.enabled,
            "composition": (
                self.composition.to_config() if self.composition else None
            ),
            "trainable": (
                list(self.trainable) if self.trainable is not None else None
            ),
        }

    def check_nothing_merged(self, action):
        """Raises if an adapter is merged, naming `action` that needs none."""
        merged = [n for n, e in self.adapters.items() if e.merged]
        if merged:
            raise ValueError(
                f"Cannot {action} while adapter {merged[0]!r} is merged into "
                "the base weights; call `tf_adapters.unmerge_adapter(model)` "
                "first."
            )

    def check_known(self, name):
        if name not in self.adapters:
            raise ValueError(
                f"No adapter named {name!r}. Adapters: {list(self.adapters)}."
            )


def get_state(backbone):
    """The backbone's `AdapterState`, or `None` if it has no adapters."""
    return get_untracked(backbone, STATE_ATTR)


def require_state(backbone):
    """The backbone's `AdapterState`; raises if it has no adapters."""
    state = get_state(backbone)
    if state is None:
        raise ValueError(
            "This model has no adapters; add one with "
            "`tf_adapters.add_adapter` or `tf_adapters.load_adapter`."
        )
    return state


def ensure_state(backbone):
    """The backbone's `AdapterState`, created empty if missing."""
    state = get_state(backbone)
    if state is None:
        state = AdapterState()
        set_untracked(backbone, STATE_ATTR, state)
    return state


def clear_state(backbone):
    del_untracked(backbone, STATE_ATTR)
