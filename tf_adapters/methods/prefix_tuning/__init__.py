from tf_adapters.methods.prefix_tuning.config import PrefixTuningConfig
from tf_adapters.methods.prefix_tuning.prefix_attention import PrefixAttention
from tf_adapters.methods.prefix_tuning.prefix_encoder import PrefixEncoder

__all__ = ["PrefixAttention", "PrefixEncoder", "PrefixTuningConfig"]
