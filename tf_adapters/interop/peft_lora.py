"""PEFT LoRA adapters (plain, rsLoRA, DoRA, PiSSA / OLoRA starts) read as
tf_adapters LoRA adapters, and written from them.

DoRA's magnitude (`lora_magnitude_vector`, one per output feature) maps like
the rows of `lora_B`. A PEFT folder saved with `init_lora_weights="pissa"` or
`"olora"` holds `A` and `B` only: PEFT rebuilds the starting pair from the
base weight when it loads the folder, and so do we (`residual_factors`, on
the whole Hugging Face module, fused or not). We write such adapters as the
plain LoRA PEFT itself converts them to (rank `2r`: `[A, A0]`, `[B, −B0]`),
which loads onto the untouched base anywhere.
"""

import collections
import dataclasses
import math
import re

import numpy as np

from tf_adapters.interop.peft_modules import PREFIX
from tf_adapters.interop.peft_modules import base_kernels
from tf_adapters.interop.peft_modules import check_in
from tf_adapters.interop.peft_modules import check_out
from tf_adapters.interop.peft_modules import module_weight
from tf_adapters.interop.peft_modules import modules_of
from tf_adapters.interop.peft_modules import out_rows
from tf_adapters.interop.peft_modules import pattern_value
from tf_adapters.interop.peft_modules import target_names
from tf_adapters.methods.lora import LoraConfig
from tf_adapters.methods.lora.config import lora_scale
from tf_adapters.methods.lora.init import RESIDUAL_INITS
from tf_adapters.methods.lora.init import residual_factors
from tf_adapters.models.hf_names import from_keras_in
from tf_adapters.models.hf_names import from_keras_out
from tf_adapters.models.hf_names import to_keras_in
from tf_adapters.models.hf_names import to_keras_out

A, B, MAGNITUDE = ".lora_A.weight", ".lora_B.weight", ".lora_magnitude_vector"
# `init_lora_weights` strings that only choose where A and B start (the
# base weights stay as they are, like True / False), so the saved A and B
# say everything.
_PLAIN_INITS = ("gaussian", "eva", "orthogonal")


def residual_init(path, meta):
    """`"pissa"` / `"olora"` when PEFT rebuilds a starting pair from the
    base at load time, `None` when the file's A and B are all there is."""
    value = meta.get("init_lora_weights", True)
    if value is None or isinstance(value, bool) or value in _PLAIN_INITS:
        return None
    if value in RESIDUAL_INITS:
        return value
    advice = (
        "its starting pair came from a randomized SVD that cannot be "
        "recomputed exactly"
        if isinstance(value, str) and value.startswith("pissa_niter_")
        else "it changes the base weights in a way tf_adapters does not rebuild"
    )
    raise ValueError(
        f"{path}: init_lora_weights={value!r}: {advice}. Convert it to a "
        "plain LoRA adapter in PEFT (`save_pretrained(..., "
        "path_initial_model_for_weight_conversion=...)`) and load that."
    )


def read_lora(path, meta, modules, targets, backbone):
    default_rank = meta.get("r", 8)
    default_alpha = meta.get("lora_alpha", 8)
    rslora = bool(meta.get("use_rslora", False))
    dora = bool(meta.get("use_dora", False))
    init = residual_init(path, meta)
    kernels = base_kernels(backbone) if init is not None else None
    arrays, ranks, alphas = {}, {}, {}
    for module, parts in sorted(modules.items()):
        a, b = parts[A], parts[B]
        rank = pattern_value(meta.get("rank_pattern"), module, default_rank)
        alpha = pattern_value(meta.get("alpha_pattern"), module, default_alpha)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ValueError(
                f"{path}: module {module!r} has lora_A {a.shape} and lora_B "
                f"{b.shape}, which are not a rank-r pair."
            )
        if a.shape[0] != rank:
            raise ValueError(
                f"{path}: module {module!r} has rank {a.shape[0]} in its "
                f"weights but rank {rank} in adapter_config.json (r / "
                "rank_pattern); the file is inconsistent."
            )
        magnitude = _magnitude(path, module, parts, dora, b.shape[0])
        check_out(path, module, targets[module], b.shape[0])
        for m, spec in targets[module]:
            check_in(path, module, m, spec, a.shape[1])
        if init is not None:
            a0, b0 = residual_factors(
                init,
                module_weight(kernels, targets[module]),
                rank,
                lora_scale(alpha, rank, rslora),
            )
        for m, spec in targets[module]:
            start, stop = out_rows(m, spec)
            arrays[f"{m.path}/lora_a"] = to_keras_in(a, spec)
            arrays[f"{m.path}/lora_b"] = to_keras_out(b[start:stop], spec)
            if dora:
                arrays[f"{m.path}/lora_magnitude"] = magnitude[
                    start:stop
                ].reshape(spec.dims(spec.kernel_out))
            if init is not None:
                arrays[f"{m.path}/lora_a_init"] = to_keras_in(a0, spec)
                arrays[f"{m.path}/lora_b_init"] = to_keras_out(
                    b0[start:stop], spec
                )
            ranks[m.path], alphas[m.path] = int(rank), float(alpha)
    rank = collections.Counter(ranks.values()).most_common(1)[0][0]
    alpha = float(default_alpha)
    config = LoraConfig(
        rank=rank,
        alpha=alpha,
        dropout=float(meta.get("lora_dropout") or 0.0),
        target_layers=sorted(ranks),
        use_rslora=rslora,
        rank_pattern={p: r for p, r in sorted(ranks.items()) if r != rank},
        alpha_pattern={p: a for p, a in sorted(alphas.items()) if a != alpha},
        use_dora=dora,
        init=init or "default",
    )
    return config, arrays


def _magnitude(path, module, parts, dora, height):
    magnitude = parts.get(MAGNITUDE)
    if dora and magnitude is None:
        raise ValueError(
            f"{path}: use_dora is set but module {module!r} has no "
            f"{MAGNITUDE.lstrip('.')!r}; the file is incomplete."
        )
    if not dora and magnitude is not None:
        raise ValueError(
            f"{path}: module {module!r} holds DoRA magnitudes but "
            "adapter_config.json does not set use_dora; the file is "
            "inconsistent."
        )
    if dora and magnitude.shape != (height,):
        raise ValueError(
            f"{path}: module {module!r} has a magnitude vector of shape "
            f"{magnitude.shape}; its lora_B has {height} output features."
        )
    return magnitude


def as_plain_lora(config, arrays):
    """A PiSSA / OLoRA adapter as the plain LoRA of rank `2r` with the same
    update (`A·B − A0·B0 = [A, A0]·[B; −B0]`), the scale kept by doubling
    alpha (`√2`·alpha with rsLoRA), as PEFT's own conversion does."""
    if config.init not in RESIDUAL_INITS:
        return config, arrays
    factor = math.sqrt(2) if config.use_rslora else 2.0
    plain = {}
    for key, value in arrays.items():
        if key.endswith("/lora_a"):
            start = arrays[key + "_init"]
            plain[key] = np.concatenate([value, start], axis=-1)
        elif key.endswith("/lora_b"):
            plain[key] = np.concatenate([value, -arrays[key + "_init"]])
        elif not key.endswith("_init"):
            plain[key] = value
    config = dataclasses.replace(
        config,
        rank=2 * config.rank,
        alpha=factor * config.alpha,
        rank_pattern={k: 2 * r for k, r in (config.rank_pattern or {}).items()},
        alpha_pattern={
            k: factor * a for k, a in (config.alpha_pattern or {}).items()
        },
        init="default",
    )
    return config, plain


def lora_to_peft(backbone, config, arrays):
    config, arrays = as_plain_lora(config, arrays)
    modules, every = modules_of(backbone, arrays, "/lora_a")
    kernels = base_kernels(backbone) if config.use_dora else None
    tensors, ranks, alphas = {}, {}, {}
    for module, parts in sorted(modules.items()):
        used = [(m, spec) for m, spec, on in parts if on]
        scales = {
            m.path: lora_scale(
                config.alpha_for(m.path),
                config.rank_for(m.path),
                config.use_rslora,
            )
            for m, _ in used
        }
        a_parts = [from_keras_in(arrays[f"{m.path}/lora_a"]) for m, _ in used]
        shared_a = all(np.array_equal(a, a_parts[0]) for a in a_parts)
        if len(parts) == 1:
            m = used[0][0]
            rank, alpha = config.rank_for(m.path), config.alpha_for(m.path)
            a = a_parts[0]
            b = from_keras_out(arrays[f"{m.path}/lora_b"])
        else:
            # A fused module (GPT-2's c_attn): one A when the parts share it
            # (as after reading a PEFT file), else the parts' A stacked into
            # a block-structured pair of rank sum(r). Each part's scale is
            # folded into its rows of B.
            rank = (
                a_parts[0].shape[0]
                if shared_a
                else sum(a.shape[0] for a in a_parts)
            )
            alpha = config.alpha
            target = lora_scale(alpha, rank, config.use_rslora)
            a = a_parts[0] if shared_a else np.concatenate(a_parts)
            b = np.zeros((out_rows(*parts[-1][:2])[1], rank), "float32")
            column = 0
            for m, spec, on in parts:
                if not on:
                    continue
                start, stop = out_rows(m, spec)
                part = from_keras_out(arrays[f"{m.path}/lora_b"])
                part = part * (scales[m.path] / target)
                width = part.shape[1]
                if shared_a:
                    b[start:stop] = part
                else:
                    b[start:stop, column : column + width] = part
                    column += width
        tensors[f"{PREFIX}{module}{A}"] = a
        tensors[f"{PREFIX}{module}{B}"] = b
        if config.use_dora:
            tensors[f"{PREFIX}{module}{MAGNITUDE}"] = _module_magnitude(
                kernels, parts, arrays
            )
        ranks[module], alphas[module] = int(rank), float(alpha)
    rank = collections.Counter(ranks.values()).most_common(1)[0][0]
    meta = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "use_rslora": config.use_rslora,
        "use_dora": config.use_dora,
        "bias": "none",
        "fan_in_fan_out": type(backbone).__name__ == "GPT2Backbone",
        "target_modules": target_names(every, modules),
        "rank_pattern": {
            re.escape(k): r for k, r in ranks.items() if r != rank
        },
        "alpha_pattern": {
            re.escape(k): a for k, a in alphas.items() if a != config.alpha
        },
    }
    return meta, tensors


def _module_magnitude(kernels, parts, arrays):
    """A fused module's DoRA magnitude: each adapted part's own, and the
    base rows' norms (a factor of one) for parts without an adapter."""
    weight = module_weight(kernels, [(m, spec) for m, spec, _ in parts])
    magnitude = np.linalg.norm(weight, axis=1).astype("float32")
    for m, spec, on in parts:
        if on:
            start, stop = out_rows(m, spec)
            magnitude[start:stop] = arrays[f"{m.path}/lora_magnitude"].reshape(
                -1
            )
    return magnitude
