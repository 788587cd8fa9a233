"""AdaLoRA (Zhang et al. 2023): LoRA in SVD form with a rank budget that
`AdaLoraCallback` moves to the projections that matter during `fit`.

Where the paper leaves a choice open, or PEFT's code differs from it, this
follows PEFT (0.21) exactly, so results compare with PEFT's:

- The penalty is `‖AAᵀ − I‖_F` and `‖BᵀB − I‖_F` (the norm, not its
  square), averaged over all of the adapter's `A` and `B` matrices, masked
  rows included (`orthogonal`).
- The scale is `alpha / (init_rank + 1e-5)` and stays that of the initial
  rank whatever is masked or truncated.
- `P`, `Q` start as `N(0, 0.02)`, `Λ` at zero (the identity).
- Before the final phase, masking sets singular values to zero, and
  training may revive them; the mask is fixed only at step
  `total_step − tfinal`, or when `fit` ends (`callback`).
- The budget is rounded down; ties at the threshold are all masked.
"""

from tf_adapters.core.lazy import lazy_attributes
from tf_adapters.methods.adalora.config import AdaLoraConfig

__all__ = ["AdaLoraCallback", "AdaLoraConfig", "AdaLoraLayer"]

# The layers load Keras, on first use: the configs alone (what the CLI's
# parser reads) stay TensorFlow-free.
__getattr__ = lazy_attributes(
    __name__,
    {
        "AdaLoraCallback": "tf_adapters.methods.adalora.callback",
        "AdaLoraLayer": "tf_adapters.methods.adalora.adalora_layer",
    },
)
