from tf_adapters.core.lazy import lazy_attributes
from tf_adapters.methods.lora.config import LoraConfig

__all__ = ["LoraConfig", "LoraLayer"]

# The layers load Keras, on first use: the configs alone (what the CLI's
# parser reads) stay TensorFlow-free.
__getattr__ = lazy_attributes(
    __name__,
    {
        "LoraLayer": "tf_adapters.methods.lora.lora_layer",
    },
)
