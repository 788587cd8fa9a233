"""One registration per method: its config class and its planner."""

from tf_adapters.methods.bottleneck.config import BottleneckConfig
from tf_adapters.methods.bottleneck.plan import plan_bottleneck
from tf_adapters.methods.ia3.config import IA3Config
from tf_adapters.methods.ia3.plan import plan_ia3
from tf_adapters.methods.lora.config import LoraConfig
from tf_adapters.methods.lora.plan import plan_lora
from tf_adapters.methods.prompt_tuning.config import PromptTuningConfig
from tf_adapters.methods.prompt_tuning.plan import plan_prompt_tuning

METHODS = {
    LoraConfig.method: (LoraConfig, plan_lora),
    BottleneckConfig.method: (BottleneckConfig, plan_bottleneck),
    IA3Config.method: (IA3Config, plan_ia3),
    PromptTuningConfig.method: (PromptTuningConfig, plan_prompt_tuning),
}


def config_from_dict(data):
    """Rebuilds any method's config from its `to_dict()` output."""
    if not isinstance(data, dict) or data.get("method") not in METHODS:
        method = data.get("method") if isinstance(data, dict) else data
        raise ValueError(
            f"Unknown adapter method {method!r}; expected one of "
            f"{sorted(METHODS)}."
        )
    return METHODS[data["method"]][0].from_dict(data)


def planner_for(config):
    entry = METHODS.get(getattr(config, "method", None))
    if entry is None or not isinstance(config, entry[0]):
        raise TypeError(
            "`config` must be one of "
            f"{[c.__name__ for c, _ in METHODS.values()]}. "
            f"Received: {config!r}."
        )
    return entry[1]
