"""Layer paths (`transformer_layer_0/self_attention/query`) and matching."""

import dataclasses
import re

import keras

from tf_adapters.compat.layers import attribute_holding
from tf_adapters.compat.layers import direct_sublayers
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.core.adapter_layer import innermost
from tf_adapters.core.path_patterns import matches

PROJECTIONS = (keras.layers.Dense, keras.layers.EinsumDense)
# PEFT's target for every linear layer of the decoder blocks.
ALL_LINEAR = "all-linear"


@dataclasses.dataclass
class Slot:
    """Where a layer sits: `getattr(parent, attr)` is `layer`.

    `layer` may be a chain of adapter wrappers; `base` is the model's own
    layer under them, and `path` is built from base-layer names only.
    """

    path: str
    parent: keras.layers.Layer
    attr: str | None
    layer: keras.layers.Layer

    @property
    def base(self):
        return innermost(self.layer)

    def wrappers(self):
        """The adapter wrappers on this slot, outermost first."""
        found, layer = [], self.layer
        while isinstance(layer, AdapterLayer):
            found.append(layer)
            layer = layer.base_layer
        return found


def iter_slots(root):
    """Yields a `Slot` for every sublayer of `root`, depth first."""
    seen = set()

    def visit(parent, prefix):
        for child in direct_sublayers(parent):
            if id(child) in seen:
                continue
            seen.add(id(child))
            base = innermost(child)
            path = f"{prefix}{base.name}"
            yield Slot(path, parent, attribute_holding(parent, child), child)
            yield from visit(base, path + "/")

    yield from visit(root, "")


def select(slots, patterns, exclude=None):
    """Slots matching any pattern and no exclude pattern."""
    return [
        s
        for s in slots
        if any(matches(p, s.path) for p in patterns)
        and not any(matches(p, s.path) for p in exclude or ())
    ]


def describe_paths(slots, limit=60):
    """A short list of paths, with layer indices folded into `<i>`."""
    folded = []
    for s in slots:
        path = re.sub(r"_\d+(?=/)", "_<i>", s.path)
        if path not in folded:
            folded.append(path)
    text = ", ".join(folded[:limit])
    if len(folded) > limit:
        text += f", ... ({len(folded) - limit} more)"
    return text
