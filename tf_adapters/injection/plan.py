"""An injection plan: every adapter layer built, nothing attached yet.

Planning resolves targets and builds the adapter layers (creating their
variables) without touching the model, so any error leaves the model as it
was. `apply()` then only swaps layers into their slots.
"""

import dataclasses
import re

from tf_adapters.injection.layer_paths import PROJECTIONS
from tf_adapters.injection.layer_paths import describe_paths
from tf_adapters.injection.layer_paths import iter_slots
from tf_adapters.injection.layer_paths import matches
from tf_adapters.injection.layer_paths import select
from tf_adapters.injection.tracking import replace_child
from tf_adapters.injection.tracking import set_child
from tf_adapters.models.families import family_of


@dataclasses.dataclass
class AdapterPlan:
    """Adapter layers to put into a model.

    Args:
        name: str. The adapter's name.
        config: `AdapterConfig`. Its config.
        wraps: list of `(Slot, AdapterLayer)`. Each layer wraps the slot's
            current occupant.
        prompt: `(Slot, PromptEmbedding)` or `None`. A prompt table to attach
            to the token embedding in that slot.
    """

    name: str
    config: object
    wraps: list = dataclasses.field(default_factory=list)
    prompt: tuple | None = None

    def variables(self):
        """Adapter variables keyed as in adapter checkpoints.

        A variable shared by several layers is listed once, under the first
        layer's path.
        """
        found, seen = {}, set()
        for slot, layer in self.wraps:
            for key, var in layer.adapter_variables().items():
                if id(var) not in seen:
                    seen.add(id(var))
                    found[f"{slot.path}/{key}"] = var
        if self.prompt is not None:
            slot, table = self.prompt
            for key, var in table.adapter_variables().items():
                found[f"{slot.path}/{table.name}/{key}"] = var
        return found

    def apply(self):
        for slot, layer in self.wraps:
            replace_child(slot.parent, slot.attr, slot.layer, layer)
            layer.attach()
        if self.prompt is not None:
            from tf_adapters.injection.class_swap import swap_in
            from tf_adapters.methods.prompt_tuning.prompt_embedding import (
                PromptTuningEmbeddingMixin,
            )

            slot, table = self.prompt
            swap_in(slot.base, PromptTuningEmbeddingMixin)
            set_child(slot.base, "tfa_prompt", table)


def role_of(path):
    """A layer path with transformer-layer indices replaced by `<i>`.

    >>> role_of("transformer_layer_11/self_attention/query")
    'transformer_layer_<i>/self_attention/query'
    """
    return re.sub(r"_\d+(?=/)", "_<i>", path)


def projection_slots(backbone, patterns, exclude, field, default=None):
    """Resolves `patterns` (or the family `default`) to projection slots.

    Raises:
        ValueError: naming the pattern that matched nothing, with the
            available layer paths.
    """
    slots = [s for s in iter_slots(backbone) if isinstance(s.base, PROJECTIONS)]
    family = family_of(backbone)
    if patterns is None:
        if family is None or default is None:
            raise ValueError(
                f"{type(backbone).__name__} has no default adapter targets; "
                f"pass `{field}=[...]`. Available layers: "
                f"{describe_paths(slots)}."
            )
        patterns = list(default(family))
    for pattern in patterns:
        if not any(matches(pattern, s.path) for s in slots):
            raise ValueError(
                f"`{field}` entry {pattern!r} matches no Dense/EinsumDense "
                f"layer of {type(backbone).__name__}. Available layers: "
                f"{describe_paths(slots)}."
            )
    chosen = select(slots, patterns, exclude)
    if not chosen:
        raise ValueError(
            f"Every layer matching `{field}`={patterns} is excluded by "
            f"`exclude`={exclude}."
        )
    for slot in chosen:
        if slot.attr is None:
            raise ValueError(
                f"Layer {slot.path!r} is not held by an attribute of its "
                "parent layer, so it cannot be wrapped."
            )
    return chosen
