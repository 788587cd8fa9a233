"""Running several adapters on one layer at once: `Stack`, `Parallel` and
fusions (`tf_adapters.core.composition`, `tf_adapters.methods.fusion`).

While a composition is active, the outermost adapter wrapper of every slot
that carries one of its adapters holds a `SlotComposer`: it calls the plain
projection once and then each member's `update_output`, in the
composition's order, so the order does not depend on the order the
adapters were added in.
"""

from keras import ops

from tf_adapters.compat.layers import get_untracked
from tf_adapters.compat.layers import set_untracked
from tf_adapters.core.adapter_layer import COMPOSER
from tf_adapters.core.adapter_layer import innermost
from tf_adapters.core.composition import Parallel
from tf_adapters.core.composition import Stack
from tf_adapters.core.layer_paths import iter_slots


class SlotComposer:
    """The adapted output of one slot under a composition.

    Args:
        chain: list of `AdapterLayer`. The slot's wrappers, outermost first.
        members: list of `(AdapterLayer, weight)` in the composition's
            order.
        mode: `"stack"`, `"parallel"` or `"fuse"`.
        fusion: the slot's `FusionLayer` (mode `"fuse"`), else `None`.
    """

    def __init__(self, chain, members, mode, fusion=None):
        self.projection = innermost(chain[0])
        # A tap only hands its input to a parallel adapter elsewhere.
        self.taps = [m for m, _ in members if m.passes_through]
        self.members = [(m, w) for m, w in members if not m.passes_through]
        self.mode = mode
        self.fusion = fusion
        hoisted = [w for w in chain if w.hoisted_activation is not None]
        self.activation = hoisted[0].hoisted_activation if hoisted else None

    def __call__(self, inputs, training=None):
        outputs = self.projection(inputs, training=training)
        for tap in self.taps:
            tap.update_output(inputs, outputs, training=training)
        if self.mode == "stack":
            for member, _ in self.members:
                outputs = member.update_output(
                    inputs, outputs, training=training
                )
        else:
            base = outputs
            deltas = [
                (member.update_output(inputs, base, training=training) - base)
                for member, _ in self.members
            ]
            if self.mode == "fuse":
                outputs = self.fusion.fuse(base, deltas)
            else:
                for delta, (_, weight) in zip(
                    deltas, self.members, strict=True
                ):
                    outputs = outputs + ops.cast(weight, delta.dtype) * delta
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


def resolve(state):
    """`(composition, enabled names, trained names)` of the model's state.

    `composition` is the active `Stack` / `Parallel`, a `Stack` standing for
    an active fusion (its adapters, then the fusion), or `None` when one
    adapter (or none) is active.
    """
    if not state.enabled:
        return None, set(), set()
    comp = state.composition
    if comp is not None:
        trained = state.trainable
        return (
            comp,
            set(comp.adapters),
            set(comp.adapters if trained is None else trained),
        )
    if state.active is None:
        return None, set(), set()
    config = state.adapters[state.active].config
    if config.method == "fusion":
        names = (*config.adapters, state.active)
        return Stack(*names), set(names), {state.active}
    return None, {state.active}, {state.active}


def install_composers(backbone, state):
    """Puts a `SlotComposer` on every slot the active composition touches
    and takes the ones of a previous composition away."""
    planned = plan_composers(backbone, state)
    for slot in iter_slots(backbone):
        for wrapper in slot.wrappers():
            if get_untracked(wrapper, COMPOSER) is not None:
                set_untracked(wrapper, COMPOSER, None)
    for wrapper, composer in planned:
        set_untracked(wrapper, COMPOSER, composer)


def plan_composers(backbone, state):
    """`[(outermost wrapper, SlotComposer)]` for `state`'s composition;
    raises, changing nothing, if a slot cannot run it."""
    comp, _, _ = resolve(state)
    planned = []
    if comp is None:
        return planned
    for slot in iter_slots(backbone):
        chain = slot.wrappers()
        if not chain:
            continue
        members, fusion = [], None
        for name in comp.adapters:
            for wrapper in chain:
                if wrapper.adapter_name != name:
                    continue
                if wrapper.is_fusion:
                    fusion = wrapper
                else:
                    members.append((wrapper, comp.weight(name)))
        if not members:
            continue
        if fusion is not None:
            fused = set(fusion.adapters)
            members = [(m, w) for m, w in members if m.adapter_name in fused]
            mode = "fuse"
        else:
            mode = "parallel" if isinstance(comp, Parallel) else "stack"
        _check_activation(slot, chain, members)
        planned.append((chain[0], SlotComposer(chain, members, mode, fusion)))
    return planned


def _check_activation(slot, chain, members):
    """A fused activation taken out of the projection (by LoRA or IA3) must
    come after every update on that slot: refuse adapters acting after it."""
    if not any(w.hoisted_activation is not None for w in chain):
        return
    late = [
        m.adapter_name
        for m, _ in members
        if not m.pre_activation and not m.passes_through
    ]
    if late:
        raise ValueError(
            f"Adapters {late} act on the activated output of {slot.path!r}, "
            "while other adapters on it act before its activation; they "
            "cannot be composed on this layer."
        )
