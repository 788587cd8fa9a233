"""AdaLoRA's rank allocator as a Keras callback.

It follows PEFT's `RankAllocator` and `AdaLoraModel.update_and_allocate`
step for step, PEFT's code being the reference where the paper leaves a
choice open:

- Steps count from 0 (`optimizer.iterations` when `fit` starts), and the
  allocation of step `s` runs after that step's update, as PEFT's
  `update_and_allocate(s)` after `optimizer.step()`.
- Before step `total_step − tfinal` the statistics are updated every step;
  from step `tinit + 1` on, every `delta_t` steps, the triplets below the
  budget's threshold get a singular value of zero. As in PEFT they are
  not frozen: the next updates may bring them back, and the next
  allocation scores them again.
- At step `total_step − tfinal` the last allocation (at the target
  budget) is fixed in each layer's `rank_mask` and the statistics are
  reset; afterwards masked singular values are set to zero after every
  step (PEFT's `mask_using_rank_pattern`), and the mask makes sure they
  have no effect.
- When `fit` ends before that step, the latest allocation is fixed as
  the mask (what PEFT's checkpoints keep, its `rank_pattern`); a later
  `fit` with the same callback takes the budget phase up again.
- The score of a triplet is that of its singular value plus the mean
  scores of its `Q` row and `P` column; a triplet is masked when its score
  is at most the `(init − budget)`-th smallest (ties masked together).
"""

import logging

import keras
import numpy as np
from keras import ops

from tf_adapters.compat.class_swap import swap_in
from tf_adapters.compat.class_swap import swap_out
from tf_adapters.compat.layers import walk_layers
from tf_adapters.methods.adalora.adalora_layer import AdaLoraLayer
from tf_adapters.methods.adalora.allocator import budget_schedule
from tf_adapters.methods.adalora.allocator import keep_masks
from tf_adapters.methods.adalora.allocator import triplet_scores
from tf_adapters.methods.adalora.config import AdaLoraConfig
from tf_adapters.methods.adalora.config import check_schedule
from tf_adapters.methods.adalora.sensitivity import FACTORS
from tf_adapters.methods.adalora.sensitivity import Sensitivity
from tf_adapters.methods.adalora.sensitivity import SensitivityOptimizer

log = logging.getLogger("tf_adapters.adalora")


class AdaLoraCallback(keras.callbacks.Callback):
    """Allocates an AdaLoRA adapter's rank budget while `fit` trains it.

    Scores each triplet by its smoothed sensitivity times its uncertainty,
    masks the least important ones on the cubic budget schedule of
    `config`, and fixes the mask for the final phase (see
    `tf_adapters.methods.adalora.callback` for the exact rules, PEFT's).
    For the gradients it needs, it mixes a few lines into the model's
    optimizer's `update_step` for the duration of `fit`.

    Args:
        config: `tfa.AdaLoraConfig`. The adapter's config (its schedule,
            `target_rank`, `beta1`, `beta2`). Its `total_step`, if `None`,
            is `fit`'s `epochs * steps_per_epoch`.

    Attributes:
        layers: the trainable `AdaLoraLayer`s of the model, in model order.
        sensitivity: their statistics (`Sensitivity`).
        rank_pattern: list of bool arrays, one per layer: the triplets the
            latest allocation kept (`None` before the first).

    Example:
    >>> import keras, numpy as np
    >>> from tf_adapters.methods.adalora import AdaLoraCallback
    >>> from tf_adapters.methods.adalora import AdaLoraConfig
    >>> from tf_adapters.methods.adalora.adalora_layer import AdaLoraLayer
    >>> config = AdaLoraConfig(init_rank=4, target_rank=2, tfinal=1)
    >>> layers = [AdaLoraLayer(keras.layers.Dense(4, trainable=False),
    ...                        "task", rank=4, alpha=8.0) for _ in range(2)]
    >>> model = keras.Sequential([keras.Input((4,)), *layers])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x = np.random.default_rng(0).normal(size=(8, 4))
    >>> callback = AdaLoraCallback(config)
    >>> _ = model.fit(x, x, batch_size=4, epochs=3, verbose=0,
    ...               callbacks=[callback])
    >>> callback.total_step, sum(callback.ranks().values())  # 2 × 2 left
    (6, 4)
    """

    def __init__(self, config):
        if not isinstance(config, AdaLoraConfig):
            raise TypeError(
                "`config` must be a `tfa.AdaLoraConfig`. Received: "
                f"config={config!r}."
            )
        super().__init__()
        self.config = config
        self.layers = []
        self.sensitivity = None
        self.rank_pattern = None
        self.total_step = config.total_step
        self.step = 0
        self.fixed = False
        self.collecting = None
        self.optimizer = None

    # === PEFT's RankAllocator ===

    @property
    def init_bgt(self):
        """The initial budget: every stored triplet."""
        return sum(layer.rank for layer in self.layers)

    @property
    def target_bgt(self):
        """The final budget: `target_rank` per layer."""
        return self.config.target_rank * len(self.layers)

    @property
    def final_step(self):
        return self.total_step - self.config.tfinal

    def budget_schedule(self, step):
        """`(budget, mask now)` at `step`."""
        config = self.config
        return budget_schedule(
            step,
            self.init_bgt,
            self.target_bgt,
            config.tinit,
            config.tfinal,
            self.total_step,
            config.delta_t,
        )

    def mask_to_budget(self, budget):
        """Masks the least important triplets down to `budget`; returns
        which triplets each layer keeps."""
        scores = [
            triplet_scores(*(self.sensitivity.score((i, f)) for f in FACTORS))
            for i in range(len(self.layers))
        ]
        pattern = keep_masks(scores, self.init_bgt, budget)
        for layer, keep in zip(self.layers, pattern, strict=True):
            zero_masked(layer, keep)
        return pattern

    def allocate(self, step):
        """PEFT's `update_and_allocate(step)`, after the step's update."""
        if step < self.final_step:
            budget, mask_now = self.budget_schedule(step)
            if mask_now:
                self.rank_pattern = self.mask_to_budget(budget)
        elif step == self.final_step:
            budget, _ = self.budget_schedule(step)
            self.rank_pattern = self.mask_to_budget(budget)
            self.fix_mask()
            self.sensitivity.reset()
            log.info("AdaLoRA ranks fixed at step %d: %s", step, self.ranks())
        else:
            for layer in self.layers:
                zero_masked(layer, ops.convert_to_numpy(layer.rank_mask) > 0)

    def fix_mask(self):
        """Makes the latest allocation each layer's fixed `rank_mask`."""
        for layer, keep in zip(self.layers, self.rank_pattern, strict=True):
            layer.rank_mask.assign(keep.astype("float32"))
        self.fixed = True

    def ranks(self):
        """`{projection path: triplets kept}` (the latest allocation, or
        the fixed mask)."""
        found = {}
        for i, layer in enumerate(self.layers):
            if self.rank_pattern is not None and not self.fixed:
                found[layer.projection.path] = int(self.rank_pattern[i].sum())
            else:
                found[layer.projection.path] = layer.kept_rank
        return found

    # === Keras callback ===

    def on_train_begin(self, logs=None):
        layers = trainable_adalora_layers(self.model)
        if [id(x) for x in layers] != [id(x) for x in self.layers]:
            self.layers = layers
            self.sensitivity = Sensitivity(
                layers, self.config.beta1, self.config.beta2
            )
            self.rank_pattern, self.fixed = None, False
        self.total_step = self.config.total_step or self.fit_steps()
        check_schedule(self.config.tinit, self.config.tfinal, self.total_step)
        self.optimizer = self.attach()
        self.step = int(ops.convert_to_numpy(self.optimizer.iterations))
        self.collecting = None
        if self.fixed and self.step <= self.final_step:
            # Fixed when the last `fit` ended: the budget phase goes on.
            for layer in self.layers:
                layer.rank_mask.assign(ops.ones(layer.rank_mask.shape))
            self.fixed = False
        elif self.step > self.final_step and not self.fixed:
            # Past the final mask with a new callback (a resumed run may not
            # have restored the masks): masked values were set to zero.
            self.rank_pattern = [
                (ops.convert_to_numpy(layer.rank_mask) > 0)
                & (ops.convert_to_numpy(layer.lora_e) != 0)
                for layer in layers
            ]
            self.fix_mask()

    def on_train_batch_begin(self, batch, logs=None):
        collecting = self.step < self.final_step
        if collecting != self.collecting:
            self.sensitivity.collecting.assign(float(collecting))
            self.collecting = collecting

    def on_train_batch_end(self, batch, logs=None):
        self.allocate(self.step)
        self.step += 1

    def on_train_end(self, logs=None):
        if not self.fixed and self.rank_pattern is not None:
            for layer, keep in zip(self.layers, self.rank_pattern, strict=True):
                zero_masked(layer, keep)
            self.fix_mask()
        self.detach()
        log.info("AdaLoRA ranks: %s", self.ranks())

    def fit_steps(self):
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if not epochs or not steps:
            raise ValueError(
                "AdaLoraCallback needs the number of training steps: set "
                "`total_step` in the AdaLoraConfig, or give `fit` data of "
                f"known length. Received: epochs={epochs}, steps={steps}."
            )
        return epochs * steps

    def attach(self):
        """Mixes `SensitivityOptimizer` into the optimizer (the inner one
        under mixed precision) and makes `fit` trace the step again."""
        model = self.model
        if getattr(model, "steps_per_execution", 1) != 1:
            raise ValueError(
                "AdaLoraCallback allocates ranks after every step; compile "
                "with steps_per_execution=1. Received: steps_per_execution="
                f"{model.steps_per_execution}."
            )
        optimizer = model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self.sensitivity.index_in(optimizer)
        swap_in(optimizer, SensitivityOptimizer, register=True)
        optimizer.adalora_sensitivity = self.sensitivity
        model.make_train_function(force=True)
        return optimizer

    def detach(self):
        optimizer = self.optimizer
        optimizer.adalora_sensitivity = None
        swap_out(optimizer, SensitivityOptimizer)
        self.model.make_train_function(force=True)


def trainable_adalora_layers(model):
    """The AdaLoRA layers of the adapter `model` trains (PEFT trains one
    AdaLoRA adapter at a time)."""
    layers = [
        layer
        for layer in walk_layers(model)
        if isinstance(layer, AdaLoraLayer) and layer.lora_e.trainable
    ]
    if not layers:
        raise ValueError(
            "AdaLoraCallback found no trainable AdaLoRA layer in the model; "
            "add an adapter with `tfa.AdaLoraConfig` and make it the active "
            "one before `fit`."
        )
    names = sorted({layer.adapter_name for layer in layers})
    if len(names) > 1:
        raise ValueError(
            "AdaLoraCallback allocates the rank of one adapter at a time; "
            f"the model trains AdaLoRA adapters {names}."
        )
    return layers


def zero_masked(layer, keep):
    """Sets the singular values of the triplets not kept to zero (PEFT's
    `masked_fill_`)."""
    layer.lora_e.assign(
        ops.where(np.asarray(keep), layer.lora_e, ops.zeros_like(layer.lora_e))
    )
