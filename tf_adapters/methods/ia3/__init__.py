from tf_adapters.core.lazy import lazy_attributes
from tf_adapters.methods.ia3.config import IA3Config

__all__ = ["IA3Config", "IA3Layer"]

# The layers load Keras, on first use: the configs alone (what the CLI's
# parser reads) stay TensorFlow-free.
__getattr__ = lazy_attributes(
    __name__,
    {
        "IA3Layer": "tf_adapters.methods.ia3.ia3_layer",
    },
)
