"""One registration per method: its config class, its planner, and the
names a run asks for it by (`"lora"`, `"houlsby"`, ...).

A planner is named by `"module:function"` and imported when first used:
the planners import the layers, and so Keras and TensorFlow, which the
names, configs and defaults (all the CLI's parser reads) do without.

The names and each config's fields and defaults are the one source the CLI
(`--method`, `--adapter KEY=VALUE`), `FinetuneConfig` and `compare` read.

Example:
>>> from tf_adapters.methods import registry
>>> registry.adapter_method_names(variants=False)[-4:]
('ia3', 'prompt_tuning', 'prefix_tuning', 'adalora')
>>> registry.adapter_method_names()[:6]
('lora', 'dora', 'rslora', 'pissa', 'olora', 'lora_all_linear')
>>> cfg = registry.make_adapter_config("pfeiffer", {"bottleneck_size": 8})
>>> (type(cfg).__name__, cfg.variant, cfg.bottleneck_size)
('BottleneckConfig', 'pfeiffer', 8)
"""

import dataclasses
import importlib

from tf_adapters.methods.adalora.config import AdaLoraConfig
from tf_adapters.methods.bottleneck.config import BottleneckConfig
from tf_adapters.methods.fusion.config import FusionConfig
from tf_adapters.methods.ia3.config import IA3Config
from tf_adapters.methods.lora.config import LoraConfig
from tf_adapters.methods.prefix_tuning.config import PrefixTuningConfig
from tf_adapters.methods.prompt_tuning.config import PromptTuningConfig

# config.method → (config class, its planner as "module:function")
METHODS = {}
# A name a run asks for → (config class, the options that name fixes)
SHORTCUTS = {}
# Names of variants of a method (e.g. `dora`: LoRA with `use_dora=True`):
# runs take them like any name; `compare` runs them when asked.
VARIANTS = set()


def register(config_cls, planner, shortcuts, variants=None):
    """Registers a method; every name may be registered once only.
    `planner` is `"module:function"`."""
    if config_cls.method in METHODS:
        raise ValueError(f"Method {config_cls.method!r} is registered twice.")
    names = {**shortcuts, **(variants or {})}
    for name in names:
        if name in SHORTCUTS or list(names).count(name) > 1:
            raise ValueError(f"Method name {name!r} is registered twice.")
    METHODS[config_cls.method] = (config_cls, planner)
    for name, fixed in names.items():
        SHORTCUTS[name] = (config_cls, dict(fixed))
    VARIANTS.update(variants or {})


register(
    LoraConfig,
    "tf_adapters.methods.lora.plan:plan_lora",
    {"lora": {}},
    variants={
        "dora": {"use_dora": True},
        "rslora": {"use_rslora": True},
        "pissa": {"init": "pissa"},
        "olora": {"init": "olora"},
        "lora_all_linear": {"target_layers": ["all-linear"]},
    },
)
register(
    BottleneckConfig,
    "tf_adapters.methods.bottleneck.plan:plan_bottleneck",
    {v: {"variant": v} for v in ("houlsby", "pfeiffer", "parallel")},
)
register(IA3Config, "tf_adapters.methods.ia3.plan:plan_ia3", {"ia3": {}})
register(
    PromptTuningConfig,
    "tf_adapters.methods.prompt_tuning.plan:plan_prompt_tuning",
    {"prompt_tuning": {}},
)
register(
    PrefixTuningConfig,
    "tf_adapters.methods.prefix_tuning.plan:plan_prefix_tuning",
    {"prefix_tuning": {}},
)
register(
    AdaLoraConfig,
    "tf_adapters.methods.adalora.plan:plan_adalora",
    {"adalora": {}},
)
# A fusion mixes adapters already trained (`tfa.add_fusion`); a run asks for
# it with its own options (`--method fusion --fuse A B`), not a shortcut.
register(FusionConfig, "tf_adapters.methods.fusion.plan:plan_fusion", {})


# Adapter options that runs (`FinetuneConfig`, the CLI) also take as options
# of their own; `adapter` (a mapping) sets any option.
SHORTCUT_OPTIONS = (
    "rank",
    "alpha",
    "target_layers",
    "bottleneck_size",
    "num_virtual_tokens",
    "share_weights",
)


def adapter_method_names(variants=True):
    """The adapter methods a run can ask for, by name (with `variants=False`,
    without the variants of a method such as `dora`)."""
    return tuple(n for n in SHORTCUTS if variants or n not in VARIANTS)


def option_names(method):
    """The options (config fields) a run of `method` may set."""
    cls, fixed = SHORTCUTS[method]
    return [f.name for f in dataclasses.fields(cls) if f.name not in fixed]


def methods_with_option(option):
    """The method names whose config has the field `option`."""
    return [m for m in SHORTCUTS if option in option_names(m)]


def all_option_names():
    """Every option of any method, in registration order."""
    names = []
    for method in SHORTCUTS:
        names += [n for n in option_names(method) if n not in names]
    return names


def check_option_names(options, source):
    """Raises naming `source` if an option is no method's."""
    unknown = sorted(set(options) - set(all_option_names()))
    if unknown:
        raise ValueError(
            f"{source}: unknown option(s) {unknown}. Adapter options: "
            f"{all_option_names()}."
        )


def option_default(option):
    """`{config class name: default}` of `option`, for help texts."""
    found = {}
    for cls, _ in SHORTCUTS.values():
        for field in dataclasses.fields(cls):
            if field.name == option:
                found[cls.__name__] = field.default
    return found


def make_adapter_config(method, options):
    """The config of adapter method `method` with `options` set.

    Raises:
        ValueError: naming an option `method` does not have, or an unknown
            method, with what is available.
    """
    if method not in SHORTCUTS:
        raise ValueError(
            f"Unknown adapter method {method!r}; expected one of "
            f"{list(SHORTCUTS)}."
        )
    cls, fixed = SHORTCUTS[method]
    allowed = option_names(method)
    for key in options:
        if key in fixed:
            chosen = [m for m, (c, f) in SHORTCUTS.items() if key in f]
            raise ValueError(
                f"`{key}` is chosen by the method name ({chosen}); pick "
                f"method={options[key]!r} instead of setting it."
            )
        if key not in allowed:
            raise ValueError(
                f"`{key}` is not an option of method={method!r} "
                f"({cls.__name__}: {allowed}); it works with "
                f"{methods_with_option(key) or 'no method'}."
            )
    return cls(**options, **fixed)


def config_from_dict(data):
    """Rebuilds any method's config from its `to_dict()` output."""
    if not isinstance(data, dict) or data.get("method") not in METHODS:
        method = data.get("method") if isinstance(data, dict) else data
        raise ValueError(
            f"Unknown adapter method {method!r}; expected one of "
            f"{sorted(METHODS)}."
        )
    return METHODS[data["method"]][0].from_dict(data)


def import_planners():
    """Imports every method's planner, and with it the method's layers,
    which registers them with Keras (`import tf_adapters` calls it)."""
    for _, planner in METHODS.values():
        importlib.import_module(planner.partition(":")[0])


def planner_for(config):
    entry = METHODS.get(getattr(config, "method", None))
    if entry is None or not isinstance(config, entry[0]):
        raise TypeError(
            "`config` must be one of "
            f"{[c.__name__ for c, _ in METHODS.values()]}. "
            f"Received: {config!r}."
        )
    module, _, function = entry[1].partition(":")
    return getattr(importlib.import_module(module), function)


# Default learning rates of the runs that add no adapter by a method name
# (the adapters' own are their configs' `default_learning_rate()`), chosen
# by `tf-adapters sweep` like the adapters' (docs/sweep.md). Full
# fine-tuning moves every weight and needs a far smaller rate.
BASELINE_LEARNING_RATES = {
    "full": 3e-5,
    "linear_probe": 1e-3,
    "fusion": FusionConfig.learning_rate,
}


def default_learning_rate(method, adapter=None):
    """The learning rate a run of `method` uses when it sets none: the
    adapter config's `default_learning_rate()` (`adapter`, or the method's
    config with its defaults), or `BASELINE_LEARNING_RATES`.

    Example:
    >>> from tf_adapters.methods.registry import default_learning_rate
    >>> default_learning_rate("full")
    3e-05
    """
    if method in BASELINE_LEARNING_RATES:
        return BASELINE_LEARNING_RATES[method]
    if adapter is None:
        adapter = make_adapter_config(method, {})
    return adapter.default_learning_rate()
