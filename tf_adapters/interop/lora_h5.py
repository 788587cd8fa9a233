"""Reading a keras-hub `.lora.h5` file (`Backbone.save_lora_weights`) in
bounded memory, without a model.

The file holds `lora/vars/rank` and, per adapted layer, `lora/<index>/vars/
lora_kernel_a` and `lora_kernel_b`. Each dataset's declared shape and dtype
are checked (floating point, no more bytes than the file holds; Keras writes
them uncompressed) before it is read, so a header that claims 10^12
elements is refused in constant memory.

Example:
>>> import os, tempfile, h5py, numpy as np
>>> from tf_adapters.interop.lora_h5 import read_lora_h5
>>> path = os.path.join(tempfile.mkdtemp(), "a.lora.h5")
>>> with h5py.File(path, "w") as f:
...     f["lora/vars/rank"] = 2
...     f["lora/3/vars/lora_kernel_a"] = np.ones((4, 2), "float32")
...     f["lora/3/vars/lora_kernel_b"] = np.ones((2, 5), "float32")
>>> rank, factors = read_lora_h5(path)
>>> rank, factors[3][0].shape, factors[3][1].shape
(2, (4, 2), (2, 5))
"""

import math
import os

import numpy as np

from tf_adapters.core.integrity import CorruptFileError
from tf_adapters.core.integrity import corrupt

WHAT = "LoRA weights"
ADVICE = "Save it again with `Backbone.save_lora_weights`, or copy it again"
# What h5py raises for a damaged file.
_DAMAGE = (OSError, KeyError, ValueError, TypeError, RuntimeError)


def read_lora_h5(path):
    """`(rank, {layer index: (A, B)})` of `.lora.h5` file `path`, the
    factors as float32 arrays.

    Raises:
        CorruptFileError: the file is not such a file, or is damaged;
            naming it.
    """
    import h5py

    size = os.path.getsize(path)
    try:
        with h5py.File(path, "r") as f:
            lora = f.get("lora")
            if not isinstance(lora, h5py.Group):
                raise _fail(path, "has no `lora` group")
            rank = _rank(path, lora.get("vars/rank"), h5py)
            factors = {}
            for key in lora:
                if key == "vars":
                    continue
                if not (key.isascii() and key.isdigit()):
                    raise _fail(path, f"has an unexpected group 'lora/{key}'")
                factors[int(key)] = tuple(
                    _array(path, lora, f"{key}/vars/{name}", size, h5py)
                    for name in ("lora_kernel_a", "lora_kernel_b")
                )
    except CorruptFileError:
        raise
    except _DAMAGE as e:
        raise _fail(
            path,
            f"is not a readable keras-hub LoRA file ({type(e).__name__}: "
            f"{e}); it is truncated or damaged",
        ) from None
    if not factors:
        raise _fail(path, "holds no LoRA layers")
    return rank, factors


def _fail(path, problem):
    return corrupt(path, WHAT, problem, ADVICE)


def _rank(path, dataset, h5py):
    if not (
        isinstance(dataset, h5py.Dataset)
        and dataset.shape == ()
        and dataset.dtype.kind in "iu"
    ):
        raise _fail(path, "lacks an integer `lora/vars/rank`")
    rank = int(dataset[()])
    if rank < 1:
        raise _fail(path, f"has rank {rank}")
    return rank


def _array(path, lora, name, size, h5py):
    dataset = lora.get(name)
    if not isinstance(dataset, h5py.Dataset):
        raise _fail(path, f"lacks the dataset 'lora/{name}'")
    dtype, shape = dataset.dtype, dataset.shape
    if dtype.kind != "f" or math.prod(shape) * dtype.itemsize > size:
        raise _fail(
            path,
            f"declares 'lora/{name}' of shape {shape} and dtype {dtype}, "
            f"which is not floating point or more than the {size}-byte file "
            "holds",
        )
    return np.asarray(dataset, "float32")
