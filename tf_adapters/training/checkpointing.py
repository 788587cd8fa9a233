"""Training that survives being killed, and stops on a non-finite loss.

Training runs as `ceil(steps / checkpoint_every)` Keras epochs of
`checkpoint_every` steps. After each epoch whose loss is finite,
`TrainingCheckpoint` writes the trainable weights and the optimizer's state
(`train_state/state.npz` + `state.json`) atomically: a kill during the write
leaves the previous checkpoint. A resumed run loads it, skips the batches
already seen (the input stream is a deterministic function of the seed), and
continues with epoch `k + 1`, so it ends with the weights an uninterrupted
run would have (the random-number states of dropout are saved too).

Only the trainable weights are saved (plus the optimizer's slots and the
random states): for an adapter that is a few MB, not the base model.
"""

import dataclasses
import json
import math
import os

import keras
import numpy as np

from tf_adapters.core.atomic import atomic_directory
from tf_adapters.core.integrity import CorruptFileError
from tf_adapters.core.integrity import load_npz
from tf_adapters.core.integrity import sha256_file
from tf_adapters.methods import registry

STATE_VERSION = 1
STATE_FILE = "state.npz"
# Options that do not change the training trajectory; a resumed run may
# change them.
RESUMABLE = {
    "output",
    "export",
    "export_dir",
    "export_name",
    "merge",
    "resume",
    "restart",
    "evaluate_base",
}


def checkpoint_interval(steps, every):
    """Steps per checkpoint: `every`, or by default the largest divisor of
    `steps` that is at most a quarter of it (a checkpoint at least every
    quarter of the run)."""
    if every:
        return every
    quarter = max(1, steps // 4)
    return max(d for d in range(1, quarter + 1) if steps % d == 0)


def plan_epochs(steps, every):
    """`(epochs, steps_per_epoch)`; the last epoch may be cut short by
    `fit`'s `steps` not dividing evenly, so `every` must divide `steps`."""
    if steps % every:
        raise ValueError(
            f"`checkpoint_every` ({every}) must divide `steps` ({steps}); "
            f"e.g. --checkpoint-every {math.gcd(steps, every)}."
        )
    return steps // every, every


# Options that only feed the adapter config: runs are compared through the
# config they resolve to (`adapter_config` in the fingerprint).
ADAPTER_OPTIONS = {*registry.SHORTCUT_OPTIONS, "adapter"}


def run_fingerprint(config):
    """The options that shape training, with the adapter's resolved."""
    found = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in RESUMABLE | ADAPTER_OPTIONS
    }
    adapter = config.adapter_config()
    found["adapter_config"] = adapter.to_dict() if adapter else None
    return found


def saved_fingerprint(saved):
    """A saved state's fingerprint. States written before runs had an
    `adapter` mapping (round 1) kept the adapter flags themselves; they are
    resolved as that code resolved them."""
    if "adapter_config" in saved:
        # Fields added to a config since (e.g. LoRA's `use_rslora`) take
        # their defaults, as they did when the state was written.
        adapter = saved["adapter_config"]
        if adapter is not None:
            adapter = registry.config_from_dict(adapter).to_dict()
        return {**saved, "adapter_config": adapter}
    found = {k: v for k, v in saved.items() if k not in ADAPTER_OPTIONS}
    method = saved.get("method")
    found["adapter_config"] = None
    if method in registry.adapter_method_names():
        names = registry.option_names(method)
        options = {k: saved[k] for k in ADAPTER_OPTIONS if k in names}
        if method == "ia3":
            options = {"target_layers": saved.get("target_layers")}
        if method == "prompt_tuning":
            options = {
                "num_virtual_tokens": saved.get("num_virtual_tokens"),
                "seed": saved.get("seed"),
            }
        config = registry.make_adapter_config(method, options)
        found["adapter_config"] = config.to_dict()
    return found


def _adapter_difference(now, saved):
    """`: adapter rank 8 (saved) vs 4 (now)`-style detail, if any."""
    a, b = saved.get("adapter_config") or {}, now.get("adapter_config") or {}
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    details = [f"{k} {a.get(k)!r} (saved) vs {b.get(k)!r} (now)" for k in keys]
    return f": adapter {', '.join(details)}" if details else ""


def _trained_variables(model):
    """Trainable weights, random-number states (dropout draws the same
    numbers after a resume) and the optimizer's variables."""
    variables = list(model.trainable_variables)
    variables += [
        v for v in model.variables if v.path.endswith("seed_generator_state")
    ]
    optimizer = model.optimizer
    if optimizer is not None:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        variables += list(optimizer.variables)
    return variables


def save_train_state(model, path, epoch, steps_done, config):
    """Writes the training state atomically."""
    variables = _trained_variables(model)
    with atomic_directory(path) as tmp:
        np.savez(
            os.path.join(tmp, STATE_FILE),
            **{f"{i:05d}": np.asarray(v) for i, v in enumerate(variables)},
        )
        meta = {
            "version": STATE_VERSION,
            "epoch": epoch,
            "steps_done": steps_done,
            "shapes": [list(v.shape) for v in variables],
            "config": run_fingerprint(config),
            "sha256": sha256_file(os.path.join(tmp, STATE_FILE)),
        }
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(meta, f, indent=2)


def load_train_state(model, path, config):
    """Restores a state written by `save_train_state`; returns its metadata.

    Everything is checked before anything is assigned: the version, the
    options that shape training (a run with other options cannot resume
    this one), the variable count and shapes, and finite values.
    """
    meta_path = os.path.join(path, "state.json")
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(
            f"No training checkpoint in {path}; nothing to resume. Run "
            "without --resume to start."
        )
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFileError(
            f"{meta_path} is not valid JSON ({e}): the training state is "
            "damaged. Run again with --restart, which moves it aside (it is "
            "kept) and starts over."
        ) from None
    if not isinstance(meta, dict):
        raise CorruptFileError(
            f"{meta_path} is not a training state (a JSON object was "
            "expected). Run again with --restart to start over."
        )
    if meta.get("version") != STATE_VERSION:
        raise ValueError(
            f"{meta_path}: checkpoint version {meta.get('version')!r}; this "
            f"tf_adapters reads version {STATE_VERSION}."
        )
    now, saved = run_fingerprint(config), saved_fingerprint(meta["config"])
    changed = sorted(
        k for k in set(now) | set(saved) if now.get(k) != saved.get(k)
    )
    if changed:
        raise ValueError(
            f"--resume: the options {changed} differ from the interrupted "
            f"run's (saved in {meta_path}){_adapter_difference(now, saved)}; "
            "resume with the same options, or start a new run in another "
            "--output."
        )
    variables = _trained_variables(model)
    data = load_npz(
        os.path.join(path, STATE_FILE),
        meta.get("sha256"),
        "training state",
        "It cannot be resumed: run again with --restart, which moves the "
        "broken state aside (it is kept, not deleted) and starts over",
    )
    try:
        arrays = [data[f"{i:05d}"] for i in range(len(data))]
    except KeyError as e:
        raise CorruptFileError(
            f"{path}: the training state lacks variable {e}; run again with "
            "--restart."
        ) from None
    if len(arrays) != len(variables):
        raise ValueError(
            f"{path}: {len(arrays)} saved variables, the model has "
            f"{len(variables)}."
        )
    for i, (var, value) in enumerate(zip(variables, arrays, strict=True)):
        if tuple(var.shape) != tuple(value.shape):
            raise ValueError(
                f"{path}: variable {i} ({var.path}) has shape "
                f"{tuple(value.shape)}, the model expects {tuple(var.shape)}."
            )
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ValueError(
                f"{path}: variable {i} ({var.path}) is not finite."
            )
    for var, value in zip(variables, arrays, strict=True):
        var.assign(value)
    return meta


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or infinite; training stopped."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops `fit` at the first step whose loss is NaN or infinite.

    Keras's `TerminateOnNaN` stops too, but says nothing of where; this
    records the step so the caller can report it, and tells
    `TrainingCheckpoint` not to save the broken weights.
    """

    def __init__(self, steps_per_epoch):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.bad_step = None
        self.bad_loss = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = self._epoch * self.steps_per_epoch + batch + 1
            self.bad_loss = float(loss)
            self.model.stop_training = True


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the training state after every epoch with a finite loss, but
    the last (the caller saves the trained weights right after `fit`)."""

    def __init__(self, path, steps_per_epoch, epochs, config, guard):
        super().__init__()
        self.path = path
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.config = config
        self.guard = guard
        self.last_saved_step = None

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.bad_step is not None or epoch + 1 == self.epochs:
            return
        steps_done = (epoch + 1) * self.steps_per_epoch
        save_train_state(
            self.model, self.path, epoch + 1, steps_done, self.config
        )
        self.last_saved_step = steps_done
