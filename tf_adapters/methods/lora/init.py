"""How a LoRA pair starts: random (`default`, `gaussian`) or taken from the
base kernel itself (`pissa`, `olora`).

PiSSA (Meng et al. 2024) starts `A·B` as the kernel's principal singular
part; OLoRA (Büyükakyüz 2024) as the first `rank` columns of its QR
factorization. Both keep the base model's function at the start by
subtracting that same starting product (the *residual* pair `A0·B0`, frozen),
which is the second reading of the article's parameter sharing: the adapter
starts from the base layer's own parameters instead of from noise.

The factors follow PEFT's `pissa_init` / `olora_init` on a weight in PEFT's
layout `(out_features, in_features)`, so a PEFT folder saved with
`init_lora_weights="pissa"` reads back to the same residual.
"""

import numpy as np

from tf_adapters.core.validation import check_choice

INITS = ("default", "gaussian", "pissa", "olora")
# Inits whose starting pair comes from the base kernel and is subtracted.
RESIDUAL_INITS = ("pissa", "olora")


def check_init(value, name="init"):
    return check_choice(name, value, INITS)


def residual_factors(init, weight, rank, scale):
    """PEFT's starting `(lora_A, lora_B)` for `weight` `(out, in)`.

    Args:
        init: str. `"pissa"` or `"olora"`.
        weight: array `(out_features, in_features)`.
        rank: int. The LoRA rank (at most `min(out, in)`).
        scale: float. The LoRA scale (`alpha / rank`, or rank-stabilized).

    Returns:
        `(lora_A, lora_B)`, float32 arrays `(rank, in)` and `(out, rank)`,
        such that `weight - scale * lora_B @ lora_A` is PEFT's residual base.

    Example:
    >>> import numpy as np
    >>> w = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    >>> a, b = residual_factors("pissa", w, rank=4, scale=2.0)
    >>> bool(np.allclose(2.0 * b @ a, w, atol=1e-5))  # full rank: all of w
    True
    """
    weight = np.asarray(weight, "float32")
    if rank > min(weight.shape):
        raise ValueError(
            f"`init={init!r}` needs rank <= min(out, in) = {min(weight.shape)} "
            f"for a {weight.shape[0]}x{weight.shape[1]} kernel; got rank "
            f"{rank}. Lower `rank` (or its `rank_pattern` entry)."
        )
    if init == "pissa":
        v, s, uh = np.linalg.svd(weight, full_matrices=False)
        root = np.sqrt(s[:rank] / scale)
        lora_a = root[:, None] * uh[:rank]
        lora_b = v[:, :rank] * root[None, :]
    elif init == "olora":
        q, r = np.linalg.qr(weight)
        lora_a, lora_b = r[:rank], q[:, :rank]
    else:
        raise ValueError(f"`init={init!r}` takes no factors from the kernel.")
    return lora_a.astype("float32"), lora_b.astype("float32")


def kernel_matrix(kernel, spec):
    """A kernel as `(in_features, out_features)`: its contracted axes (in
    kernel order), then its output axes (in output order), flattened."""
    letters = spec.contracted + spec.kernel_out
    perm = [spec.kernel.index(c) for c in letters]
    kernel = np.transpose(np.asarray(kernel, "float32"), perm)
    size_in = int(np.prod(spec.dims(spec.contracted)))
    return kernel.reshape(size_in, -1)


def keras_factors(init, kernel, spec, rank, scale):
    """`(A, B)` in the shapes of a `LoraLayer`'s `lora_a` / `lora_b`."""
    lora_a, lora_b = residual_factors(
        init, kernel_matrix(kernel, spec).T, rank, scale
    )
    a = lora_a.T.reshape(spec.dims(spec.contracted) + (rank,))
    b = lora_b.T.reshape((rank,) + spec.dims(spec.kernel_out))
    return a, b
