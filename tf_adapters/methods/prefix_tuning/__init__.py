from tf_adapters.core.lazy import lazy_attributes
from tf_adapters.methods.prefix_tuning.config import PrefixTuningConfig

__all__ = ["PrefixAttention", "PrefixEncoder", "PrefixTuningConfig"]

# The layers load Keras, on first use: the configs alone (what the CLI's
# parser reads) stay TensorFlow-free.
__getattr__ = lazy_attributes(
    __name__,
    {
        "PrefixAttention": "tf_adapters.methods.prefix_tuning.prefix_attention",
        "PrefixEncoder": "tf_adapters.methods.prefix_tuning.prefix_encoder",
    },
)
