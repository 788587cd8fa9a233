"""An injection plan: every adapter layer built, nothing attached yet.

Planning resolves targets and builds the adapter layers (creating their
variables) without touching the model, so any error leaves the model as it
was. `apply()` then only swaps layers into their slots.
"""

import dataclasses
import re

from tf_adapters.compat.class_swap import swap_in
from tf_adapters.compat.tracking import replace_sublayer
from tf_adapters.core.forward_scope import ForwardScopeMixin
from tf_adapters.core.layer_paths import ALL_LINEAR
from tf_adapters.core.layer_paths import PROJECTIONS
from tf_adapters.core.layer_paths import describe_paths
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.layer_paths import matches
from tf_adapters.core.layer_paths import select


@dataclasses.dataclass
class AdapterPlan:
    """Adapter layers to put into a model.

    Args:
        name: str. The adapter's name.
        config: `AdapterConfig`. Its config.
        wraps: list of `(Slot, AdapterLayer)`. Each layer wraps the slot's
            current occupant.
        prompt: `(Slot, table)` or `None`. A prompt table to attach to the
            token embedding in that slot (`table.attach_to(embedding)`).
        scopes: list of layers (decoder blocks) whose calls must open a
            forward scope, because adapter layers inside them hand tensors
            to each other (`tf_adapters.core.forward_scope`).
    """

    name: str
    config: object
    wraps: list = dataclasses.field(default_factory=list)
    prompt: tuple | None = None
    scopes: list = dataclasses.field(default_factory=list)

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
            replace_sublayer(slot.parent, slot.attr, slot.layer, layer)
            layer.attach()
        if self.prompt is not None:
            slot, table = self.prompt
            table.attach_to(slot.base)
        for layer in self.scopes:
            swap_in(layer, ForwardScopeMixin)


def role_of(path):
    """A layer path with transformer-layer indices replaced by `<i>`.

    >>> role_of("transformer_layer_11/self_attention/query")
    'transformer_layer_<i>/self_attention/query'
    """
    return re.sub(r"_\d+(?=/)", "_<i>", path)


def decoder_projections(backbone, slots, field="target_layers"):
    """The projection slots inside the backbone's decoder blocks
    (`"all-linear"`): every Dense / EinsumDense of `transformer_layers`,
    none outside them (embeddings, output head)."""
    blocks = getattr(backbone, "transformer_layers", None)
    if not blocks:
        raise ValueError(
            f"`{field}='{ALL_LINEAR}'` needs a backbone with decoder blocks "
            f"(`transformer_layers`); {type(backbone).__name__} has none. "
            f"List the layers instead. Available: {describe_paths(slots)}."
        )
    names = {block.name for block in blocks}
    return [s for s in slots if s.path.split("/", 1)[0] in names]


def projection_slots(backbone, patterns, exclude, field, default=None):
    """Resolves `patterns` (or `default`, the family's) to projection slots.

    The pattern `"all-linear"` stands for every projection of the decoder
    blocks (`decoder_projections`).

    Raises:
        ValueError: naming the pattern that matched nothing, with the
            available layer paths.
    """
    slots = [s for s in iter_slots(backbone) if isinstance(s.base, PROJECTIONS)]
    if patterns is None:
        if default is None:
            raise ValueError(
                f"{type(backbone).__name__} has no default adapter targets; "
                f"pass `{field}=[...]`. Available layers: "
                f"{describe_paths(slots)}."
            )
        patterns = list(default)
    if ALL_LINEAR in patterns:
        patterns = [p for p in patterns if p != ALL_LINEAR] + [
            s.path for s in decoder_projections(backbone, slots, field)
        ]
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
