"""The adapter config a fine-tuning run asks for."""

from tf_adapters.methods.bottleneck import BottleneckConfig
from tf_adapters.methods.ia3 import IA3Config
from tf_adapters.methods.lora import LoraConfig
from tf_adapters.methods.prompt_tuning import PromptTuningConfig


def adapter_config(config):
    """The adapter config a `FinetuneConfig` asks for."""
    if config.method == "lora":
        return LoraConfig(
            rank=config.rank,
            alpha=config.alpha,
            target_layers=config.target_layers,
            share_weights=config.share_weights,
        )
    if config.method == "ia3":
        return IA3Config(target_layers=config.target_layers)
    if config.method == "prompt_tuning":
        return PromptTuningConfig(
            num_virtual_tokens=config.num_virtual_tokens, seed=config.seed
        )
    return BottleneckConfig(
        variant=config.method,
        bottleneck_size=config.bottleneck_size,
        target_layers=config.target_layers,
        share_weights=config.share_weights,
    )
