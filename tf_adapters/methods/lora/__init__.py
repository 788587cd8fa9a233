from tf_adapters.methods.lora.config import LoraConfig
from tf_adapters.methods.lora.lora_layer import LoraLayer

__all__ = ["LoraConfig", "LoraLayer"]
