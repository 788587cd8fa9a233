"""`--method fusion`: a run that loads trained adapters and trains an
AdapterFusion over them (`tfa.add_fusion`) on this run's task."""

import logging
import os

from tf_adapters.checkpoint import load_adapter
from tf_adapters.checkpoint import read_any_adapter
from tf_adapters.checkpoint import read_checkpoint_config
from tf_adapters.checkpoint import save_adapter
from tf_adapters.injection.api import list_adapters
from tf_adapters.injection.fusion import add_fusion
from tf_adapters.injection.lifecycle import adapter_config
from tf_adapters.injection.lifecycle import split_model

log = logging.getLogger("tf_adapters.finetune")


def check_fuse(config):
    """`fuse` goes with `method="fusion"` and names existing folders."""
    if config.method != "fusion":
        if config.fuse is not None:
            raise ValueError(
                "`fuse` lists the adapters a fusion mixes; it needs "
                f"--method fusion (got method={config.method!r})."
            )
        return
    if not config.fuse:
        raise ValueError(
            "--method fusion needs --fuse ADAPTER_DIR [ADAPTER_DIR ...]: "
            "the trained adapters to mix (e.g. two finetune runs' "
            "OUTPUT/adapter folders)."
        )
    for path in config.fuse:
        if not isinstance(path, str) or not os.path.isdir(path):
            raise ValueError(
                f"`fuse` entry {path!r} is not a folder; give the folder of "
                "a trained adapter (a finetune run's OUTPUT/adapter)."
            )
    given = sorted(config.adapter_options())
    if given or config.init_adapter or config.loraplus_lr_ratio:
        raise ValueError(
            "--method fusion trains a fusion over the --fuse adapters; "
            "leave adapter options, --init-adapter and "
            "--loraplus-lr-ratio unset."
        )


def add_fused(run):
    """Loads the `--fuse` adapters (frozen) and adds the fusion over them,
    `<export name>_fusion`; returns `(fusion name, fused adapters' names)`
    (their saved names, made unique: two runs on `sentiment` give
    `sentiment` and `sentiment_2`)."""
    config, model = run.config, run.model
    names = []
    for path in config.fuse:
        _, _, saved = read_any_adapter(path, split_model(model)[0])
        name = _unique(saved, names)
        load_adapter(model, path, name=name, activate=False)
        names.append(name)
        method = adapter_config(model, name).method
        log.info("fusing adapter %r (%s) from %s", name, method, path)
    fusion = _unique(f"{config.export_name}_fusion", names)
    add_fusion(model, names, name=fusion)
    return fusion, names


def save_fused(run):
    """Saves the fused adapters next to the fusion (`OUTPUT/fused/NAME`), so
    the run's folder holds everything the fusion needs."""
    folder = os.path.join(run.config.output, "fused")
    for name in run.fused:
        save_adapter(run.model, os.path.join(folder, name), name=name)


def load_with_fused(model, path):
    """`tfa.load_adapter(model, path)`; when `path` is the fusion a
    `--method fusion` run saved (`OUTPUT/adapter`), the adapters it mixes
    load first, frozen and inactive, from that run's `OUTPUT/fused/` (unless
    the model has them already), so `tf-adapters evaluate` and `export`
    take the run's adapter folder as it is."""
    fused = os.path.join(os.path.dirname(os.path.normpath(path)), "fused")
    if os.path.isdir(fused) and os.path.isdir(path):
        # The config alone names them; the fusion's weights load once.
        _, config = read_checkpoint_config(path)
        for name in getattr(config, "adapters", None) or ():
            folder = os.path.join(fused, name)
            if name not in list_adapters(model) and os.path.isdir(folder):
                log.info("loading fused adapter %r from %s", name, folder)
                load_adapter(model, folder, name=name, activate=False)
    return load_adapter(model, path)


def _unique(name, taken):
    unique, i = name, 2
    while unique in taken:
        unique, i = f"{name}_{i}", i + 1
    return unique
