from tf_adapters.methods.prompt_tuning.config import PromptTuningConfig
from tf_adapters.methods.prompt_tuning.prompt_embedding import PromptEmbedding

__all__ = ["PromptEmbedding", "PromptTuningConfig"]
