from tf_adapters.methods.ia3.config import IA3Config
from tf_adapters.methods.ia3.ia3_layer import IA3Layer

__all__ = ["IA3Config", "IA3Layer"]
