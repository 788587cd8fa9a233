from tf_adapters.core.lazy import lazy_attributes
from tf_adapters.methods.prompt_tuning.config import PromptTuningConfig

__all__ = ["PromptEmbedding", "PromptTuningConfig"]

# The layers load Keras, on first use: the configs alone (what the CLI's
# parser reads) stay TensorFlow-free.
__getattr__ = lazy_attributes(
    __name__,
    {
        "PromptEmbedding": "tf_adapters.methods.prompt_tuning.prompt_embedding",
    },
)
