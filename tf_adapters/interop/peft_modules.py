"""PEFT module names of a keras-hub backbone, and the shape checks and
naming rules every PEFT reader and writer shares."""

import collections
import re

import numpy as np
from keras import ops

from tf_adapters.core.layer_paths import PROJECTIONS
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.methods.lora.init import kernel_matrix
from tf_adapters.models.hf_names import hf_modules

PREFIX = "base_model.model."


def module_table(backbone):
    """`{Hugging Face module: [(HFModule, EinsumSpec)]}`."""
    table = collections.defaultdict(list)
    for m in hf_modules(backbone):
        table[m.hf_name].append((m, m.spec))
    return dict(table)


def pattern_value(patterns, module, default):
    """PEFT's `rank_pattern` rule: the first key `k` with
    `re.match(rf"(.*\\.)?({k})$", module)`."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def out_rows(m, spec):
    return m.rows or (0, int(np.prod(spec.dims(spec.kernel_out))))


def check_in(path, module, m, spec, width):
    expected = int(np.prod(spec.dims(spec.contracted)))
    if width != expected:
        raise ValueError(
            f"{path}: module {module!r} takes {width} input features but "
            f"layer {m.path!r} of this model takes {expected}; the adapter "
            "was trained on a base of another shape."
        )


def check_out(path, module, parts, height):
    expected = out_rows(*parts[-1])[1]
    if height != expected:
        raise ValueError(
            f"{path}: module {module!r} has {height} output features but "
            f"this model's {' + '.join(m.path for m, _ in parts)} has "
            f"{expected}; the adapter was trained on a base of another shape."
        )


def modules_of(backbone, arrays, suffix):
    """`({module: [(HFModule, EinsumSpec, adapted?)]}, every module name)`:
    the modules with an adapted part, and all of the model's; refuses
    adapted layers that have no module."""
    table = module_table(backbone)
    adapted = {k.removesuffix(suffix) for k in arrays if k.endswith(suffix)}
    known = {m.path for parts in table.values() for m, _ in parts}
    for layer in sorted(adapted - known):
        raise ValueError(
            f"Layer {layer!r} has no Hugging Face counterpart among the "
            "projections PEFT adapts; it cannot be written in PEFT's format."
        )
    selected = {
        module: [(m, spec, m.path in adapted) for m, spec in parts]
        for module, parts in table.items()
        if any(m.path in adapted for m, _ in parts)
    }
    return selected, set(table)


def target_names(every, modules):
    """PEFT `target_modules`: short suffixes when they select exactly
    `modules` among `every` module name, else the full names."""
    short = {short_name(name) for name in modules}
    chosen = {n for n in every if any(n.endswith("." + s) for s in short)}
    return sorted(short) if chosen == set(modules) else sorted(modules)


def short_name(module):
    """`self_attn.q_proj` of `model.layers.3.self_attn.q_proj`."""
    return re.sub(r"^.*?\.\d+\.", "", module)


def base_kernels(backbone):
    """`{layer path: base kernel}` of every adaptable slot, built once for
    the `module_weight` calls of one read or write."""
    return {
        slot.path: slot.base.kernel
        for slot in iter_slots(backbone)
        if isinstance(slot.base, PROJECTIONS)
    }


def module_weight(kernels, parts):
    """The base weight of a Hugging Face module, `(out, in)` as PEFT sees
    it, from the keras-hub kernels (`base_kernels`) of its `parts`
    (`[(HFModule, spec)]`; a fused module's parts give its rows in order)."""
    rows = [
        kernel_matrix(ops.convert_to_numpy(kernels[m.path]), spec).T
        for m, spec in parts
    ]
    return np.concatenate(rows)
