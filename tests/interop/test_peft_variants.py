"""LoRA variants (DoRA, PiSSA, OLoRA, all-linear) in and out of PEFT,
against real PEFT on tiny random Hugging Face models: equal logits both
ways, fused modules (GPT-2's c_attn, GPT-NeoX's query_key_value, Phi-3's
qkv_proj) included."""

import json

import numpy as np
import pytest

peft = pytest.importorskip("peft")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_tiny  # noqa: E402

import tf_adapters as tfa  # noqa: E402
from tf_adapters.injection.lifecycle import adapter_layers  # noqa: E402
from tf_adapters.injection.lifecycle import adapter_variables  # noqa: E402

FAMILIES = ["llama", "gemma", "gpt2", "opt", "gpt_neox", "phi3"]
TOLERANCE = 1e-5
VARIANTS = {
    "dora": dict(use_dora=True),
    "pissa": dict(init_lora_weights="pissa"),
    "olora": dict(init_lora_weights="olora"),
    "pissa-dora-rslora": dict(
        init_lora_weights="pissa", use_dora=True, use_rslora=True
    ),
}


@pytest.fixture(autouse=True)
def exact_svd(monkeypatch):
    """PEFT's PiSSA takes a float32 `torch.linalg.svd`, whose residual is
    off by ~1e-6 (numpy's float32 SVD: ~3e-8 from float64), which tiny
    random models amplify to ~4e-5 in the logits. Computing PEFT's SVD in
    float64 (then float32, as PEFT stores it) leaves the implementations'
    difference, which is what these tests compare."""
    svd = torch.linalg.svd

    def float64_svd(weight, *args, **kwargs):
        found = svd(weight.double(), *args, **kwargs)
        return type(found)(t.to(weight.dtype) for t in found)

    monkeypatch.setattr(torch.linalg, "svd", float64_svd)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hf_{request.param}")
    hf_tiny.save_hf(request.param, folder)
    return request.param, str(folder)


def _fresh_hf(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder).eval()


def _peft_folder(folder, kind, out, **options):
    """A PEFT LoRA variant on every linear module, as if trained (A, B and
    magnitudes moved), saved to `out`; returns PEFT's logits."""
    config = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=hf_tiny.peft_targets(kind),
        fan_in_fan_out=kind == "gpt2",
        task_type="CAUSAL_LM",
        **options,
    )
    model = peft.get_peft_model(_fresh_hf(folder), config)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(0.3 * torch.randn_like(param) * param.std())
                if "lora_B" in name:
                    param.add_(0.05 * torch.randn_like(param))
    model.eval()
    model.save_pretrained(out)
    return hf_tiny.hf_logits(model)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_peft_variant_loads_with_peft_logits(family, tmp_path, variant):
    kind, folder = family
    if kind == "gpt2" and variant == "olora":
        pytest.skip(
            "PEFT 0.21's olora_init ignores fan_in_fan_out: on GPT-2's "
            "Conv1D it builds lora_A of the wrong shape and the forward fails"
        )
    reference = _peft_folder(folder, kind, tmp_path / "a", **VARIANTS[variant])
    base = hf_tiny.hf_logits(_fresh_hf(folder))
    assert np.abs(reference - base).max() > 1e-2  # the adapter matters
    backbone = hf_tiny.keras_backbone(folder)
    tfa.load_adapter(backbone, str(tmp_path / "a"))
    config = tfa.active_adapter(backbone) and _config(backbone)
    assert config.use_dora == VARIANTS[variant].get("use_dora", False)
    ours = hf_tiny.keras_logits(backbone)
    assert np.abs(ours - reference).max() < TOLERANCE


def _config(backbone):
    from tf_adapters.injection.lifecycle import adapter_config

    return adapter_config(backbone, tfa.active_adapter(backbone))


def _train(backbone, seed=0):
    """Moves every trainable adapter variable, as training would."""
    rng = np.random.default_rng(seed)
    for var in backbone.trainable_weights:
        noise = rng.normal(0.0, 0.2, var.shape) * (np.std(var.numpy()) + 0.1)
        var.assign(var.numpy() + noise.astype("float32"))


@pytest.mark.parametrize(
    "options",
    [
        dict(use_dora=True),
        dict(init="pissa", rank_pattern={"transformer_layer_1/.*": 2}),
        dict(init="olora", use_dora=True, use_rslora=True),
    ],
    ids=["dora", "pissa-patterns", "olora-dora-rslora"],
)
def test_ours_saved_as_peft_load_in_peft(family, tmp_path, options):
    kind, folder = family
    backbone = hf_tiny.keras_backbone(folder)
    start = hf_tiny.keras_logits(backbone)
    config = tfa.LoraConfig(rank=4, target_layers="all-linear", **options)
    tfa.add_adapter(backbone, config, "default")
    assert np.abs(hf_tiny.keras_logits(backbone) - start).max() < TOLERANCE
    _train(backbone)
    ours = hf_tiny.keras_logits(backbone)
    assert np.abs(ours - start).max() > 1e-2
    out = tmp_path / "peft"
    tfa.save_adapter(backbone, str(out), format="peft")
    meta = json.loads((out / "adapter_config.json").read_text())
    assert meta["use_dora"] == config.use_dora
    assert meta.get("init_lora_weights", True) is True  # plain LoRA, rank 2r
    model = peft.PeftModel.from_pretrained(_fresh_hf(folder), str(out)).eval()
    assert np.abs(hf_tiny.hf_logits(model) - ours).max() < TOLERANCE
    again = hf_tiny.keras_backbone(folder)
    tfa.load_adapter(again, str(out))
    assert np.abs(hf_tiny.keras_logits(again) - ours).max() < TOLERANCE


def test_pissa_checkpoint_round_trip_keeps_the_starting_pair(tmp_path):
    folder = hf_tiny.save_hf("llama", tmp_path / "hf")
    backbone = hf_tiny.keras_backbone(folder)
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=4, init="pissa"), "p")
    _train(backbone)
    ours = hf_tiny.keras_logits(backbone)
    variables = adapter_variables(backbone, "p")
    assert any(k.endswith("lora_a_init") for k in variables)
    frozen = [v for k, v in variables.items() if "init" in k]
    assert frozen and not any(v.trainable for v in frozen)
    tfa.save_adapter(backbone, str(tmp_path / "ckpt"))
    again = hf_tiny.keras_backbone(folder)
    tfa.load_adapter(again, str(tmp_path / "ckpt"))
    assert np.abs(hf_tiny.keras_logits(again) - ours).max() < 1e-6


@pytest.mark.parametrize(
    "init, message",
    [
        ("pissa_niter_4", "randomized SVD"),
        ("loftq", "changes the base weights"),
        ("corda", "changes the base weights"),
    ],
)
def test_peft_inits_that_cannot_be_rebuilt_are_refused(tmp_path, init, message):
    folder = hf_tiny.save_hf("llama", tmp_path / "hf")
    _peft_folder(folder, "llama", tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    meta["init_lora_weights"] = init
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps(meta))
    backbone = hf_tiny.keras_backbone(folder)
    with pytest.raises(ValueError, match=message):
        tfa.load_adapter(backbone, str(tmp_path / "a"))
    assert tfa.list_adapters(backbone) == []


def test_all_linear_selects_the_modules_peft_selects(family):
    kind, folder = family
    config = peft.LoraConfig(r=2, target_modules="all-linear")
    model = peft.get_peft_model(_fresh_hf(folder), config)
    theirs = {
        name.removeprefix("base_model.model.")
        for name, module in model.named_modules()
        if hasattr(module, "lora_A")
    }
    backbone = hf_tiny.keras_backbone(folder)
    tfa.add_adapter(
        backbone, tfa.LoraConfig(rank=2, target_layers="all-linear")
    )
    from tf_adapters.models.hf_names import hf_modules

    ours = {layer.projection.path for layer in adapter_layers(backbone)}
    by_path = {m.path: m.hf_name for m in hf_modules(backbone)}
    assert set(by_path) == ours  # every adapted layer has a module, and back
    assert {by_path[p] for p in ours} == theirs
    # Counted: every linear module of each of the 2 layers, per family.
    assert len(theirs) == 2 * len(hf_tiny.peft_targets(kind))
