from tf_adapters.methods.fusion.config import FusionConfig
from tf_adapters.methods.fusion.fusion_layer import FusionLayer

__all__ = ["FusionConfig", "FusionLayer"]
