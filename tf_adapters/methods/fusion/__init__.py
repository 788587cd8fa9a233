from tf_adapters.core.lazy import lazy_attributes
from tf_adapters.methods.fusion.config import FusionConfig

__all__ = ["FusionConfig", "FusionLayer"]

# The layers load Keras, on first use: the configs alone (what the CLI's
# parser reads) stay TensorFlow-free.
__getattr__ = lazy_attributes(
    __name__,
    {
        "FusionLayer": "tf_adapters.methods.fusion.fusion_layer",
    },
)
