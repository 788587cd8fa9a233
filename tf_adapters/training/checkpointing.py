"""Training that survives being killed, and stops on a non-finite loss.

Training runs as `steps / checkpoint_every` Keras epochs of
`checkpoint_every` steps. After each epoch whose loss is finite, and when a
signal stops training mid-epoch (`training.preemption`),
`TrainingCheckpoint` writes the trainable weights and the optimizer's state
(`train_state/state.npz` + `state.json`) atomically: a kill during the write
leaves the previous checkpoint. A resumed run loads it, skips the batches
already seen (the input stream is a deterministic function of the seed), and
continues after step `k`, so it ends with the weights an uninterrupted run
would have (the random-number states of dropout are saved too).

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
from tf_adapters.core.integrity import corrupt
from tf_adapters.core.integrity import load_json
from tf_adapters.core.integrity import sha256_file
from tf_adapters.core.npz_file import load_npz
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
    # The rate it trains with: the method's default given or left unset is
    # one run.
    found["learning_rate"] = config.effective_learning_rate()
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
        return _with_old_defaults({**saved, "adapter_config": adapter})
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
    return _with_old_defaults(found)


# Options added since states were first written, with the value every
# earlier run had.
_ADDED_OPTIONS = {
    "group_by_length": False,
    "ema_momentum": 0.0,
    "dtype": None,
    "calibration_size": 0,
}


def with_old_eval_length(options):
    """`options` (a run's config or fingerprint) with the evaluation length
    a run from before `eval_sequence_length` scored at, its
    `sequence_length`, where they name no `eval_sequence_length`."""
    if "sequence_length" not in options:
        return options
    return {"eval_sequence_length": options["sequence_length"], **options}


def with_old_options(options):
    """`options` (a run's config or fingerprint) with the values a run
    from before an option was added had, where they do not name it: its
    evaluation length (`with_old_eval_length`) and `_ADDED_OPTIONS`."""
    options = with_old_eval_length(options)
    return {**_ADDED_OPTIONS, **options}


def _with_old_defaults(found):
    """States written before fingerprints resolved the learning rate kept
    `None` for the method's default: it resolves as it did then. Options
    added since take the value those runs had (`with_old_options`)."""
    found = with_old_options(found)
    if found.get("learning_rate") is None and found.get("method"):
        adapter = found.get("adapter_config")
        adapter = registry.config_from_dict(adapter) if adapter else None
        found["learning_rate"] = registry.default_learning_rate(
            found["method"], adapter
        )
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


_ADVICE = (
    "It cannot be resumed: run again with --restart, which moves the broken "
    "state aside (it is kept, not deleted) and starts over"
)


def read_train_state(path):
    """Reads and checks the training state in folder `path`, without a
    model: `(meta, saved fingerprint, [arrays])`.

    Raises:
        FileNotFoundError: no state in `path`.
        CorruptFileError: `state.json` or `state.npz` is damaged or they
            disagree.
        ValueError: a state of another version.
    """
    meta_path = os.path.join(path, "state.json")
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(
            f"No training checkpoint in {path}; nothing to resume. Run "
            "without --resume to start."
        )
    meta = load_json(meta_path, "training state", _ADVICE)
    if meta.get("version") != STATE_VERSION:
        raise ValueError(
            f"{meta_path}: checkpoint version {meta.get('version')!r}; this "
            f"tf_adapters reads version {STATE_VERSION}."
        )
    shapes = meta.get("shapes")
    if (
        not isinstance(meta.get("config"), dict)
        or not (isinstance(shapes, list) and all(map(_is_shape, shapes)))
        or not _is_shape([meta.get("epoch"), meta.get("steps_done")])
    ):
        raise corrupt(
            meta_path,
            "training state",
            "lacks its run options (`config`), variable `shapes`, `epoch` "
            "or `steps_done`",
            _ADVICE,
        )
    try:
        saved = saved_fingerprint(meta["config"])
    except (ValueError, TypeError, KeyError) as e:
        raise corrupt(
            meta_path,
            "training state",
            f"holds run options that cannot be read ({e})",
            _ADVICE,
        ) from None
    state_path = os.path.join(path, STATE_FILE)
    data = load_npz(state_path, meta.get("sha256"), "training state", _ADVICE)
    names = [f"{i:05d}" for i in range(len(shapes))]
    _check_state_arrays(state_path, data, dict(zip(names, shapes, strict=True)))
    return meta, saved, [data[n] for n in names]


def _check_state_arrays(state_path, data, shapes):
    """The arrays must be exactly those `state.json` records, in shape."""
    problem = None
    for name in sorted(set(data) | set(shapes)):
        if name not in shapes:
            problem = f"holds variable {name}, which state.json does not record"
        elif name not in data:
            problem = f"lacks variable {name}, which state.json records"
        elif data[name].shape != tuple(shapes[name]):
            problem = (
                f"holds variable {name} of shape {data[name].shape}; "
                f"state.json records {tuple(shapes[name])}"
            )
        if problem:
            raise corrupt(state_path, "training state", problem, _ADVICE)


def _is_shape(value):
    return isinstance(value, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    )


def load_train_state(model, path, config):
    """Restores a state written by `save_train_state`; returns its metadata.

    Everything is checked before anything is assigned: the files
    (`read_train_state`), the options that shape training (a run with
    other options cannot resume this one), the variable count, shapes and
    dtypes, and finite values.
    """
    meta, saved, arrays = read_train_state(path)
    meta_path = os.path.join(path, "state.json")
    now = run_fingerprint(config)
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
        if str(value.dtype) != str(var.dtype):
            raise ValueError(
                f"{path}: variable {i} ({var.path}) has dtype {value.dtype}, "
                f"the model's is {var.dtype}."
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
    `TrainingCheckpoint` not to save the broken weights. It counts the
    run's steps: `step` is the number done, from `start_step` (those of
    the interrupted run this one resumes).
    """

    def __init__(self, start_step=0):
        super().__init__()
        self.step = start_step
        self.bad_step = None
        self.bad_loss = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = self.step
            self.bad_loss = float(loss)
            self.model.stop_training = True


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the training state at the end of each epoch, and stops `fit`
    after step `steps`.

    Epochs count `steps_per_epoch` steps from where the run started, so a
    run resumed from a stop mid-epoch saves `steps_per_epoch` steps later
    and its last epoch ends at `steps`, cut short. An epoch a signal cut
    short is saved too, at the step done. Nothing is saved after a
    non-finite loss (the weights are broken) or after the last step (the
    caller saves the trained weights right after `fit`).
    """

    def __init__(self, path, steps_per_epoch, steps, config, guard):
        super().__init__()
        self.path = path
        self.steps_per_epoch = steps_per_epoch
        self.steps = steps
        self.config = config
        self.guard = guard
        self.last_saved_step = None

    def on_train_batch_end(self, batch, logs=None):
        if self.guard.step >= self.steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.bad_step is None and self.guard.step < self.steps:
            self.save()

    def save(self):
        """Writes the state after the steps done (once per step)."""
        step = self.guard.step
        if step != self.last_saved_step:
            epoch = step // self.steps_per_epoch
            save_train_state(self.model, self.path, epoch, step, self.config)
            self.last_saved_step = step
