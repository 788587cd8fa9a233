"""tf_adapters: adapter fine-tuning for keras-hub language models.

Example:
>>> import tf_adapters as tfa
>>> cfg = tfa.LoraConfig(rank=8, alpha=16, target_layers=["query", "value"])
>>> cfg.scale
2.0
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tf_adapters.checkpoint import load_adapter  # noqa: E402
from tf_adapters.checkpoint import save_adapter  # noqa: E402
from tf_adapters.injection.adapted_model import register_keras_hub_classes  # noqa: E402
from tf_adapters.injection.api import active_adapter  # noqa: E402
from tf_adapters.injection.api import add_adapter  # noqa: E402
from tf_adapters.injection.api import delete_adapter  # noqa: E402
from tf_adapters.injection.api import disable_adapters  # noqa: E402
from tf_adapters.injection.api import enable_adapters  # noqa: E402
from tf_adapters.injection.api import list_adapters  # noqa: E402
from tf_adapters.injection.api import set_active_adapter  # noqa: E402
from tf_adapters.injection.unload import merge_adapter  # noqa: E402
from tf_adapters.injection.unload import merge_and_unload  # noqa: E402
from tf_adapters.injection.unload import unmerge_adapter  # noqa: E402
from tf_adapters.methods.bottleneck import BottleneckConfig  # noqa: E402
from tf_adapters.methods.ia3 import IA3Config  # noqa: E402
from tf_adapters.methods.lora import LoraConfig  # noqa: E402
from tf_adapters.methods.prompt_tuning import PromptTuningConfig  # noqa: E402
from tf_adapters.saving import save_model  # noqa: E402
from tf_adapters.summary import trainable_summary  # noqa: E402

__version__ = "0.1.0"

register_keras_hub_classes()

__all__ = [
    "save_model",
    "BottleneckConfig",
    "IA3Config",
    "LoraConfig",
    "PromptTuningConfig",
    "active_adapter",
    "add_adapter",
    "delete_adapter",
    "disable_adapters",
    "enable_adapters",
    "list_adapters",
    "load_adapter",
    "merge_adapter",
    "merge_and_unload",
    "save_adapter",
    "set_active_adapter",
    "trainable_summary",
    "unmerge_adapter",
]
