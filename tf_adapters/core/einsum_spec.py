"""Reads a `Dense` / `EinsumDense` as an einsum so adapters can stay generic.

Every projection we adapt is `output = einsum(input, kernel)`. Splitting the
kernel's axes into *contracted* ones (summed over) and *output* ones lets one
piece of code build a low-rank branch, a scaling vector or a merge for any
equation keras-hub uses (`abc,cde->abde`, `btd,ndh->btnh`, `bquh,uhm->bqm`...).
"""

import dataclasses
import string

import keras
from keras import ops

_RANK_LETTER_POOL = "RSTUVWXYZ"


@dataclasses.dataclass(frozen=True)
class EinsumSpec:
    """The axes of a projection layer's kernel.

    Args:
        input: str. Input subscripts, possibly starting with `...`.
        kernel: str. Kernel subscripts.
        output: str. Output subscripts, possibly starting with `...`.
        kernel_shape: tuple of int. The kernel's shape.
    """

    input: str
    kernel: str
    output: str
    kernel_shape: tuple

    @classmethod
    def from_layer(cls, layer):
        """Builds the spec of a built `Dense` or `EinsumDense` layer."""
        if isinstance(layer, keras.layers.EinsumDense):
            equation = layer.equation
        elif isinstance(layer, keras.layers.Dense):
            equation = "...i,io->...o"
        else:
            raise TypeError(
                f"Layer {layer.name!r} is a {type(layer).__name__}; adapters "
                "of this kind wrap `Dense` or `EinsumDense` layers only."
            )
        if not layer.built:
            raise ValueError(
                f"Layer {layer.name!r} is not built; call the model once first."
            )
        inputs, output = equation.replace(" ", "").split("->")
        lhs, kernel = inputs.split(",")
        spec = cls(
            lhs, kernel, output, tuple(int(d) for d in layer.kernel.shape)
        )
        spec.validate(layer.name)
        return spec

    def validate(self, layer_name):
        for letter in self.kernel:
            if letter in self.input and letter in self.output:
                raise ValueError(
                    f"Layer {layer_name!r} has equation "
                    f"{self.input},{self.kernel}->{self.output} whose kernel "
                    f"axis {letter!r} is batched; it cannot be adapted."
                )
            if letter not in self.input and letter not in self.output:
                raise ValueError(
                    f"Layer {layer_name!r}: kernel axis {letter!r} is summed "
                    "away; it cannot be adapted."
                )
        if set(_letters(self.output)) - set(self.batch) - set(self.kernel_out):
            raise ValueError(
                f"Layer {layer_name!r}: output axes of "
                f"{self.input},{self.kernel}->{self.output} do not come from "
                "the input batch axes and the kernel; it cannot be adapted."
            )

    @property
    def contracted(self):
        """Kernel letters summed over, in kernel order."""
        return "".join(c for c in self.kernel if c in self.input)

    @property
    def kernel_out(self):
        """Kernel letters kept in the output, in output order."""
        return "".join(c for c in self.output if c in self.kernel)

    @property
    def batch(self):
        """Input subscripts that are not contracted (may start with `...`)."""
        return "".join(c for c in self.input if c not in self.kernel)

    def dims(self, letters):
        return tuple(self.kernel_shape[self.kernel.index(c)] for c in letters)

    @property
    def rank_letter(self):
        used = set(self.input + self.kernel + self.output)
        return next(c for c in _RANK_LETTER_POOL if c not in used)

    # Equations for a low-rank branch x·A·B and its merged form A·B.
    @property
    def down_equation(self):
        r = self.rank_letter
        return f"{self.input},{self.contracted}{r}->{self.batch}{r}"

    @property
    def up_equation(self):
        r = self.rank_letter
        return f"{self.batch}{r},{r}{self.kernel_out}->{self.output}"

    @property
    def delta_equation(self):
        r = self.rank_letter
        return f"{self.contracted}{r},{r}{self.kernel_out}->{self.kernel}"

    @property
    def kernel_norm_equation(self):
        """Sum a kernel-shaped tensor over its input features."""
        return f"{self.kernel}->{self.kernel_out}"

    @property
    def output_dim(self):
        """Size of the output's last axis, which must come from the kernel."""
        last = self.output[-1]
        if last not in self.kernel:
            raise ValueError(
                f"The last output axis of {self.input},{self.kernel}->"
                f"{self.output} does not come from the kernel."
            )
        return self.dims(last)[0]


def scale_along(tensor, subscripts, scale, scaled):
    """`tensor` times `scale` along its axes `scaled`: what
    `einsum(f"{subscripts},{scaled}->{subscripts}", tensor, scale)` gives,
    as a broadcast multiply.

    TensorFlow runs such an einsum (no axis summed) as a batched matmul
    between transposed copies: ten times slower than the multiply on a
    CPU, forward and backward (an IA3 training step on the built-in QA
    task took 19.8 s instead of LoRA's 4.9 s).

    Args:
        tensor: a tensor with subscripts `subscripts` (may start with
            `...`).
        subscripts: str.
        scale: a tensor with subscripts `scaled`, each one of
            `subscripts`' letters.
        scaled: str.

    Example:
    >>> import numpy as np
    >>> x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    >>> s = np.arange(12, dtype="float32").reshape(4, 3)
    >>> y = scale_along(x, "abc", s, "cb")
    >>> bool(np.allclose(y, np.einsum("abc,cb->abc", x, s)))
    True
    """
    letters = _letters(subscripts)
    order = [c for c in letters if c in scaled]
    if sorted(order) != sorted(scaled):
        raise ValueError(
            f"Cannot scale {subscripts!r} along {scaled!r}: every scaled "
            "axis must be one of the tensor's, once."
        )
    if order != list(scaled):
        scale = keras.ops.transpose(scale, [scaled.index(c) for c in order])
    shape = [1] * len(letters)
    for c, size in zip(order, keras.ops.shape(scale), strict=True):
        shape[letters.index(c)] = size
    return tensor * keras.ops.reshape(scale, shape)


def _letters(subscripts):
    return [c for c in subscripts if c in string.ascii_letters]


_HALF_DTYPES = ("bfloat16", "float16")


def einsum(equation, x, w):
    """`ops.einsum(equation, x, w)`, with `x`'s leading `...` spelled out
    as letters when `x` is in 16-bit floats and its rank is known.

    With oneDNN (TensorFlow's default CPU kernels), TensorFlow 2.21 gets a
    bfloat16 einsum with an ellipsis wrong when the contracted size is
    odd: `...R,Ro->...o` with R = 3 returned wrong rows on a CPU with AMX,
    while `bR,Ro->bo` was right. Spelled-out subscripts take the other
    kernel. Float32 keeps the equation as it is.

    Example:
    >>> import numpy as np
    >>> x = np.ones((2, 4, 3), "float32")
    >>> w = np.ones((3, 5), "float32")
    >>> tuple(einsum("...i,io->...o", x, w).shape)
    (2, 4, 5)
    >>> _spell_out("...i,io->...o", 3)
    'abi,io->abo'
    """
    ndim = getattr(x, "ndim", None)
    half = keras.backend.standardize_dtype(x.dtype) in _HALF_DTYPES
    if half and ndim is not None and equation.startswith("..."):
        equation = _spell_out(equation, ndim)
    return ops.einsum(equation, x, w)


def _spell_out(equation, ndim):
    """`equation` with the first operand's `...` replaced by letters that
    it does not use, for an operand of rank `ndim`."""
    lhs = equation.split(",")[0]
    explicit = len(lhs) - 3
    free = [c for c in string.ascii_lowercase if c not in equation]
    letters = "".join(free[: ndim - explicit])
    return equation.replace("...", letters)
