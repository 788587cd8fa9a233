"""AdaLoRA trained side by side with PEFT's: the same two-layer model, the
same data, plain SGD, PEFT's `update_and_allocate(step)` after each torch
step and `AdaLoraCallback` in `fit`. After every step the weights (so the
gradients and the orthogonality penalty), PEFT's `RankAllocator` statistics
(`ipt`, `exp_avg_ipt`, `exp_avg_unc`) and the masks must agree, through the
warm-up, the budget phase (masking at steps 2-4), the final mask (step 5)
and the final phase (step 6)."""

import types

import keras
import numpy as np
import pytest

from tf_adapters.methods.adalora import AdaLoraCallback
from tf_adapters.methods.adalora import AdaLoraConfig
from tf_adapters.methods.adalora.adalora_layer import AdaLoraLayer

SIZES = (6, 5, 4)  # in, hidden, out
STEPS = 7
SCHEDULE = dict(tinit=1, tfinal=2, total_step=STEPS)
INIT_RANK, TARGET_RANK, ALPHA, ORTH, LR = 4, 2, 8.0, 0.5, 0.5


def _torch_model(torch, peft):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(SIZES[0], SIZES[1])
            self.fc2 = torch.nn.Linear(SIZES[1], SIZES[2])

        def forward(self, x, y):
            out = self.fc2(torch.tanh(self.fc1(x)))
            # PEFT adds its penalty to an output's `loss`.
            return types.SimpleNamespace(loss=((out - y) ** 2).mean())

    torch.manual_seed(0)
    config = peft.AdaLoraConfig(
        init_r=INIT_RANK,
        target_r=TARGET_RANK,
        deltaT=1,
        beta1=0.85,
        beta2=0.85,
        orth_reg_weight=ORTH,
        lora_alpha=ALPHA,
        target_modules=["fc1", "fc2"],
        **SCHEDULE,
    )
    return peft.get_peft_model(Net(), config)


def _keras_model(net):
    """The same weights; PEFT's `(out, in)` / `(r, in)` / `(out, r)` are
    Keras's `(in, out)` / `(in, r)` / `(r, out)`."""
    layers = []
    for name, activation in (("fc1", "tanh"), ("fc2", None)):
        module = getattr(net.base_model.model, name)
        base = module.base_layer
        dense = keras.layers.Dense(base.out_features, trainable=False)
        layer = AdaLoraLayer(
            dense,
            "default",
            rank=INIT_RANK,
            alpha=ALPHA,
            orth_reg_weight=ORTH / 4,  # PEFT's mean over 4 matrices
        )
        layer.build((None, base.in_features))
        dense.kernel.assign(base.weight.detach().numpy().T)
        dense.bias.assign(base.bias.detach().numpy())
        factors = _peft_factors(module)
        for key in ("lora_a", "lora_e", "lora_b"):
            getattr(layer, key).assign(factors[key])
        layers += [layer] + (
            [keras.layers.Activation(activation)] * bool(activation)
        )
    return keras.Sequential([keras.Input((SIZES[0],)), *layers])


def _peft_factors(module):
    """A module's factors (or any tensors named like them) in our layout."""
    get = lambda d: d["default"].detach().numpy()  # noqa: E731
    return {
        "lora_a": get(module.lora_A).T,
        "lora_e": get(module.lora_E)[:, 0],
        "lora_b": get(module.lora_B).T,
    }


def _peft_stats(net, table):
    """PEFT's `table` (e.g. `exp_avg_ipt`) for fc1, fc2, in our layout."""
    found = []
    for name in ("fc1", "fc2"):
        stats = {
            key: table[f"{name}.{peft_name}.default"].numpy()
            for key, peft_name in (
                ("lora_a", "lora_A"),
                ("lora_e", "lora_E"),
                ("lora_b", "lora_B"),
            )
        }
        found.append(
            {
                "lora_a": stats["lora_a"].T,
                "lora_e": stats["lora_e"][:, 0],
                "lora_b": stats["lora_b"].T,
            }
        )
    return found


class Recorder(keras.callbacks.Callback):
    """Our state after each step (after `AdaLoraCallback`'s allocation)."""

    def __init__(self, adalora):
        super().__init__()
        self.adalora, self.steps = adalora, []

    def on_train_batch_end(self, batch, logs=None):
        sensitivity = self.adalora.sensitivity
        record = {"weights": [], "stats": {}}
        for i, layer in enumerate(self.adalora.layers):
            record["weights"].append(
                {
                    "lora_a": layer.lora_a.numpy(),
                    # What the update uses (PEFT zeroes masked values).
                    "lora_e": layer.singular_values().numpy(),
                    "lora_b": layer.lora_b.numpy(),
                }
            )
            for table in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
                record["stats"].setdefault(table, []).append(
                    {
                        key: getattr(sensitivity, table)[(i, key)].numpy()
                        for key in ("lora_a", "lora_e", "lora_b")
                    }
                )
        record["kept"] = [
            layer.singular_values().numpy() != 0
            for layer in self.adalora.layers
        ]
        self.steps.append(record)


def _max_difference(ours, theirs):
    """The largest absolute difference; also checks each value within
    1e-4 of its own size (the statistics are small numbers)."""
    for i in range(len(ours)):
        for key in ("lora_a", "lora_e", "lora_b"):
            np.testing.assert_allclose(
                ours[i][key], theirs[i][key], rtol=1e-4, atol=1e-9
            )
    return max(
        float(np.abs(ours[i][key] - theirs[i][key]).max())
        for i in range(len(ours))
        for key in ("lora_a", "lora_e", "lora_b")
    )


def test_rank_allocation_matches_peft_step_by_step():
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")

    net = _torch_model(torch, peft)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, SIZES[0])).astype("float32")
    y = rng.normal(size=(8, SIZES[2])).astype("float32")
    model = _keras_model(net)
    model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    config = AdaLoraConfig(
        init_rank=INIT_RANK,
        target_rank=TARGET_RANK,
        alpha=ALPHA,
        orth_reg_weight=ORTH,
        **SCHEDULE,
    )
    adalora = AdaLoraCallback(config)
    recorder = Recorder(adalora)
    model.fit(
        np.tile(x, (STEPS, 1)),
        np.tile(y, (STEPS, 1)),
        batch_size=len(x),
        shuffle=False,
        verbose=0,
        callbacks=[adalora, recorder],
    )

    optimizer = torch.optim.SGD(
        [p for p in net.parameters() if p.requires_grad], lr=LR
    )
    allocator = net.base_model.rankallocator
    final = STEPS - SCHEDULE["tfinal"]
    differences = {"weights": 0.0, "stats": 0.0}
    masked_steps = 0
    for step in range(STEPS):
        # `AdaLoraModel.forward` (what PEFT's task models call) adds the
        # penalty; a bare `PeftModel` would call the torch model directly.
        loss = net.base_model(x=torch.tensor(x), y=torch.tensor(y)).loss
        loss.backward()
        optimizer.step()
        net.base_model.update_and_allocate(step)
        optimizer.zero_grad()

        ours = recorder.steps[step]
        modules = [net.base_model.model.fc1, net.base_model.model.fc2]
        theirs = [_peft_factors(m) for m in modules]
        differences["weights"] = max(
            differences["weights"], _max_difference(ours["weights"], theirs)
        )
        if step < final:
            for table in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
                expected = _peft_stats(net, getattr(allocator, table))
                difference = _max_difference(ours["stats"][table], expected)
                differences["stats"] = max(differences["stats"], difference)
        else:  # PEFT drops its statistics at the final mask
            assert allocator.exp_avg_ipt == {}
            for table in ours["stats"].values():
                assert all(not v.any() for t in table for v in t.values())
        kept = [f["lora_e"] != 0 for f in theirs]
        for ours_kept, their_kept in zip(ours["kept"], kept, strict=True):
            np.testing.assert_array_equal(ours_kept, their_kept)
        total = sum(int(k.sum()) for k in kept)
        if total < 2 * INIT_RANK:
            masked_steps += 1
        budget, _ = allocator.budget_schedule(step)
        if step > SCHEDULE["tinit"]:
            assert total <= budget, step
    assert differences["weights"] < 1e-5, differences
    assert differences["stats"] < 1e-5, differences
    # Masking happened, and ended at PEFT's final pattern.
    assert masked_steps >= STEPS - SCHEDULE["tinit"] - 1
    pattern = net.peft_config["default"].rank_pattern
    for layer, name in zip(adalora.layers, ("fc1", "fc2"), strict=True):
        expected = np.array(pattern[f"{name}.lora_E.default"])
        np.testing.assert_array_equal(layer.rank_mask.numpy() > 0, expected)
    assert sum(adalora.ranks().values()) == 2 * TARGET_RANK
    print("max differences:", differences)
