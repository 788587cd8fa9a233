"""keras-hub `.lora.h5` files (`Backbone.save_lora_weights`) read as
tf_adapters LoRA adapters, exactly.

keras-hub's LoRA (Keras's `enable_lora`) factorizes a kernel along its last
axis only: `ΔW[..., k] = Σ_r A[..., r]·B[r, k]` with `A` shaped like the
kernel without its last axis. For a query kernel `(hidden, heads,
head_dim)` that is one rank-`r` update per head with its own `A` and a
shared `B`. tf_adapters represents it exactly as a block-structured LoRA
of rank `heads·r`: `A' = A` with `(heads, r)` flattened, `B'` block-diagonal
over heads. Where the kernel has no other output axis (Dense layers, the
attention output) the ranks are equal and the weights the same. Keras
scales the update by `lora_alpha / rank` with `lora_alpha = rank` (what
`Backbone.enable_lora` uses), i.e. by 1, and so does the loaded adapter.
The file names layers by their index among the backbone's layers that have
weights, in Keras's walk order; every indexed layer's shapes are checked.
"""

import os
import string

import numpy as np

from tf_adapters.compat.layers import direct_sublayers
from tf_adapters.compat.layers import keras_walk_order
from tf_adapters.core.adapter_layer import innermost
from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.layer_paths import PROJECTIONS
from tf_adapters.core.layer_paths import iter_slots
from tf_adapters.core.validation import check_weight_arrays
from tf_adapters.interop.lora_h5 import read_lora_h5
from tf_adapters.methods.lora import LoraConfig
from tf_adapters.methods.prompt_tuning.prompt_embedding import PromptEmbedding

SUFFIX = ".lora.h5"


def is_keras_lora_file(path):
    return str(path).endswith(SUFFIX) and os.path.isfile(path)


def read_keras_lora(path, backbone):
    """Reads keras-hub `.lora.h5` file `path` for `backbone`.

    Returns:
        `(LoraConfig, arrays)` keyed as in tf_adapters checkpoints.

    Raises:
        ValueError: for an unreadable file or one saved from another model
            (naming the first layer whose shapes differ).
    """
    rank, factors = _read_file(path)
    indexed = _layers_with_weights(backbone)
    paths = {id(s.base): s.path for s in iter_slots(backbone)}
    arrays, ranks = {}, {}
    for index, (a, b) in sorted(factors.items()):
        if index >= len(indexed) or not isinstance(indexed[index], PROJECTIONS):
            raise ValueError(
                f"{path}: layer #{index} of this "
                f"{type(backbone).__name__} is not a Dense/EinsumDense "
                "layer; the file was saved from another model."
            )
        layer = indexed[index]
        spec = EinsumSpec.from_layer(layer)
        kernel = spec.kernel_shape
        if a.shape != kernel[:-1] + (rank,) or b.shape != (rank, kernel[-1]):
            raise ValueError(
                f"{path}: layer {paths[id(layer)]!r} (#{index}) has LoRA "
                f"factors {a.shape} and {b.shape} in the file, but this "
                f"model's kernel {kernel} needs {kernel[:-1] + (rank,)} and "
                f"{(rank, kernel[-1])}; the file was saved from another model."
            )
        lora_a, lora_b = block_lora(a, b, spec)
        arrays[f"{paths[id(layer)]}/lora_a"] = lora_a
        arrays[f"{paths[id(layer)]}/lora_b"] = lora_b
        ranks[paths[id(layer)]] = lora_a.shape[-1]
    common = max(set(ranks.values()), key=list(ranks.values()).count)
    config = LoraConfig(
        rank=common,
        alpha=float(common),
        target_layers=sorted(ranks),
        rank_pattern={p: r for p, r in ranks.items() if r != common},
        alpha_pattern={p: float(r) for p, r in ranks.items() if r != common},
    )
    return config, arrays


def block_lora(a, b, spec):
    """Keras's last-axis factors `(A, B)` as an equal tf_adapters pair.

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.core.einsum_spec import EinsumSpec
    >>> layer = keras.layers.EinsumDense("abc,cde->abde", (None, 2, 3))
    >>> layer.build((1, 4, 5))
    >>> spec = EinsumSpec.from_layer(layer)
    >>> a, b = np.random.rand(5, 2, 1), np.random.rand(1, 3)
    >>> a2, b2 = block_lora(a, b, spec)
    >>> a2.shape, b2.shape
    ((5, 2), (2, 2, 3))
    >>> bool(np.allclose(np.einsum(spec.delta_equation, a2, b2), a @ b))
    True
    """
    kernel, last = spec.kernel, spec.kernel[-1]
    if last not in spec.kernel_out:
        raise ValueError(
            f"Kernel axes {kernel!r} end in a contracted axis; Keras LoRA "
            "factors of such a kernel have no tf_adapters equivalent."
        )
    extra = "".join(x for x in spec.kernel_out if x != last)
    free = [c for c in string.ascii_letters if c not in kernel + "r"]
    rows = "".join(free[: len(extra)])
    # A: axes kernel[:-1] + r  ->  contracted + extra + r, then flattened.
    a_ours = np.einsum(f"{kernel[:-1]}r->{spec.contracted}{extra}r", a)
    count = int(np.prod(spec.dims(extra)))
    a_ours = a_ours.reshape(spec.dims(spec.contracted) + (count * b.shape[0],))
    eye = np.eye(count, dtype=b.dtype).reshape(spec.dims(extra) * 2)
    b_ours = np.einsum(
        f"{rows}{extra},r{last}->{rows}r{spec.kernel_out}", eye, b
    )
    b_ours = b_ours.reshape((count * b.shape[0],) + spec.dims(spec.kernel_out))
    return a_ours.astype("float32"), b_ours.astype("float32")


def _read_file(path):
    rank, factors = read_lora_h5(path)
    for index, (a, b) in factors.items():
        check_weight_arrays(path, {f"lora/{index}/a": a, f"lora/{index}/b": b})
    return rank, factors


def _children(layer):
    """The base model's own sublayers: adapter wrappers replaced by the
    layer they wrap, prompt tables left out."""
    return [
        innermost(child)
        for child in direct_sublayers(layer)
        if not isinstance(child, PromptEmbedding)
    ]


def _layers_with_weights(backbone):
    return [
        layer
        for layer in keras_walk_order(backbone, _children)
        if layer.weights
    ]
