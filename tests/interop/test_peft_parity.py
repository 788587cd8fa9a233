"""PEFT adapters in and out, against real PEFT on tiny random Hugging Face
models and their keras-hub conversions: equal logits both ways."""

import json
import os

import numpy as np
import pytest

peft = pytest.importorskip("peft")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_tiny  # noqa: E402

import tf_adapters as tfa  # noqa: E402

FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gpt2", "opt"]
FAMILIES += ["gpt_neox", "phi3"]
TOLERANCE = 1e-5


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hf_{request.param}")
    hf_tiny.save_hf(request.param, folder)
    return request.param, str(folder)


def _fresh_hf(folder):
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    return model.eval()


def _peft_folder(folder, config, out):
    """Wraps the HF model with PEFT `config` (random B), saves it, and
    returns PEFT's logits."""
    model = peft.get_peft_model(_fresh_hf(folder), config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "ia3_l" in name:
                param.copy_(1 + 0.5 * torch.randn_like(param))
            if "prompt_embeddings" in name or "embedding.weight" in name:
                param.copy_(0.5 * torch.randn_like(param))
    model.eval()
    model.save_pretrained(out)
    return hf_tiny.hf_logits(model)


def _targets(kind):
    return hf_tiny.peft_targets(kind)


def _lora(kind, **kwargs):
    return peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=_targets(kind),
        init_lora_weights=False,
        fan_in_fan_out=kind == "gpt2",
        task_type="CAUSAL_LM",
        **kwargs,
    )


def _load_ours(folder, adapter):
    backbone = hf_tiny.keras_backbone(folder)
    tfa.load_adapter(backbone, adapter)
    return hf_tiny.keras_logits(backbone)


def test_peft_lora_loads_with_peft_logits(family, tmp_path):
    kind, folder = family
    reference = _peft_folder(folder, _lora(kind), tmp_path / "a")
    base = hf_tiny.hf_logits(_fresh_hf(folder))
    assert np.abs(reference - base).max() > 1e-2  # the adapter matters
    ours = _load_ours(folder, tmp_path / "a")
    assert np.abs(ours - reference).max() < TOLERANCE


def test_rslora_rank_and_alpha_patterns(family, tmp_path):
    kind, folder = family
    first = _targets(kind)[0]
    config = _lora(
        kind,
        use_rslora=True,
        rank_pattern={first: 2},
        alpha_pattern={rf"{'h' if kind == 'gpt2' else 'layers'}\.1\..*": 3},
    )
    reference = _peft_folder(folder, config, tmp_path / "a")
    ours = _load_ours(folder, tmp_path / "a")
    assert np.abs(ours - reference).max() < TOLERANCE


def test_regex_targets_and_layers_to_transform(family, tmp_path):
    kind, folder = family
    regex = _lora(kind)
    regex.target_modules = r".*\.0\..*(v_proj|c_attn|query_key_value|qkv_proj)"
    reference = _peft_folder(folder, regex, tmp_path / "regex")
    assert np.abs(_load_ours(folder, tmp_path / "regex") - reference).max() < (
        TOLERANCE
    )
    indexed = _lora(kind, layers_to_transform=[1])
    reference = _peft_folder(folder, indexed, tmp_path / "indexed")
    assert (
        np.abs(_load_ours(folder, tmp_path / "indexed") - reference).max()
        < TOLERANCE
    )


def test_peft_ia3_loads_with_peft_logits(family, tmp_path):
    kind, folder = family
    targets = _targets(kind)
    feedforward = [targets[-1]]
    config = peft.IA3Config(
        target_modules=targets,
        feedforward_modules=feedforward,
        fan_in_fan_out=kind == "gpt2",
        task_type="CAUSAL_LM",
    )
    reference = _peft_folder(folder, config, tmp_path / "a")
    assert np.abs(_load_ours(folder, tmp_path / "a") - reference).max() < (
        TOLERANCE
    )


def test_peft_prompt_tuning_loads_with_peft_logits(family, tmp_path):
    kind, folder = family
    config = peft.PromptTuningConfig(
        num_virtual_tokens=3, task_type="CAUSAL_LM"
    )
    reference = _peft_folder(folder, config, tmp_path / "a")[:, 3:]
    assert np.abs(_load_ours(folder, tmp_path / "a") - reference).max() < (
        TOLERANCE
    )


def _randomize(backbone, seed=0):
    rng = np.random.default_rng(seed)
    from tf_adapters.injection.lifecycle import adapter_variables

    for var in adapter_variables(backbone, "default").values():
        var.assign(
            rng.normal(1.0 if "ia3" in var.path else 0.0, 0.3, var.shape)
        )


@pytest.mark.parametrize(
    "config",
    [
        tfa.LoraConfig(rank=2),  # the family's default targets
        tfa.LoraConfig(
            rank=2,
            alpha=3.0,
            use_rslora=True,
            target_layers=[".*"],
            exclude=["token_embedding.*"],
            rank_pattern={"transformer_layer_1/.*|decoder_block_1/.*": 3},
        ),
        tfa.IA3Config(),
        tfa.PromptTuningConfig(num_virtual_tokens=3),
    ],
    ids=["lora", "rslora-all-patterns", "ia3", "prompt"],
)
def test_ours_saved_as_peft_load_in_peft(family, tmp_path, config):
    kind, folder = family
    backbone = hf_tiny.keras_backbone(folder)
    tfa.add_adapter(backbone, config, "default")
    _randomize(backbone)
    ours = hf_tiny.keras_logits(backbone)
    out = tmp_path / "peft"
    tfa.save_adapter(
        backbone, str(out), format="peft", base_model_name_or_path=folder
    )
    meta = json.loads((out / "adapter_config.json").read_text())
    assert meta["base_model_name_or_path"] == folder
    model = peft.PeftModel.from_pretrained(_fresh_hf(folder), str(out)).eval()
    theirs = hf_tiny.hf_logits(model)
    if isinstance(config, tfa.PromptTuningConfig):
        theirs = theirs[:, config.num_virtual_tokens :]
    assert np.abs(ours - theirs).max() < TOLERANCE
    # And back: the PEFT folder loads as an equal tf_adapters adapter.
    assert np.abs(_load_ours(folder, out) - ours).max() < TOLERANCE


def test_bad_peft_folders_are_refused_and_the_model_is_unchanged(
    family, tmp_path
):
    kind, folder = family
    good = tmp_path / "good"
    _peft_folder(folder, _lora(kind), good)
    backbone = hf_tiny.keras_backbone(folder)
    before = [w.numpy().copy() for w in backbone.weights]

    def broken(name, edit_config=None, edit_file=None):
        bad = tmp_path / name
        os.makedirs(bad)
        meta = json.loads((good / "adapter_config.json").read_text())
        if edit_config:
            edit_config(meta)
        (bad / "adapter_config.json").write_text(json.dumps(meta))
        data = (good / "adapter_model.safetensors").read_bytes()
        (bad / "adapter_model.safetensors").write_bytes(
            edit_file(data) if edit_file else data
        )
        return bad

    cases = {
        "LOHA": broken("loha", lambda m: m.update(peft_type="LOHA")),
        "use_dora": broken("dora", lambda m: m.update(use_dora=True)),
        "modules_to_save": broken(
            "mts", lambda m: m.update(modules_to_save=["lm_head"])
        ),
        "rank 4 in its weights but rank 8": broken(
            "rank", lambda m: m.update(r=8)
        ),
        "safetensors": broken("cut", edit_file=lambda d: d[: len(d) // 2]),
        "bias='all'": broken("bias", lambda m: m.update(bias="all")),
        "do not select": broken(
            "unselected", lambda m: m.update(target_modules=["no_such"])
        ),
        "lora_magnitude_vector": _with_tensor(
            broken("magnitude"), "lora_magnitude_vector"
        ),
        "does not unpickle": _pickled(broken("pickled")),
    }
    for needle, path in cases.items():
        with pytest.raises(ValueError, match=needle):
            tfa.load_adapter(backbone, str(path))
    assert tfa.list_adapters(backbone) == []
    after = [w.numpy() for w in backbone.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def _with_tensor(folder, suffix):
    """Adds a tensor (e.g. DoRA's magnitudes) to a PEFT file."""
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    path = str(folder / "adapter_model.safetensors")
    tensors = load_file(path)
    module = next(iter(tensors)).split(".lora_")[0]
    tensors[f"{module}.{suffix}.weight"] = np.ones(4, "float32")
    save_file(tensors, path)
    return folder


def _pickled(folder):
    """PEFT's legacy torch-pickle weights file instead of safetensors."""
    os.replace(
        folder / "adapter_model.safetensors", folder / "adapter_model.bin"
    )
    return folder


def test_unknown_module_and_foreign_base_are_refused(tmp_path):
    llama, gpt2 = tmp_path / "llama", tmp_path / "gpt2"
    hf_tiny.save_hf("llama", llama)
    hf_tiny.save_hf("gpt2", gpt2)
    _peft_folder(str(llama), _lora("llama"), tmp_path / "a")
    with pytest.raises(ValueError, match="model.layers.0.*not an adaptable"):
        tfa.load_adapter(hf_tiny.keras_backbone(gpt2), str(tmp_path / "a"))
    # Same family, another width: refused naming the layer and both sizes.
    wide = hf_tiny.hf_model("llama")
    config = wide.config
    config.hidden_size, config.intermediate_size = 48, 64
    config.head_dim = 12
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "wide")
    with pytest.raises(ValueError, match="32 output features.*has 48"):
        tfa.load_adapter(
            hf_tiny.keras_backbone(tmp_path / "wide"), str(tmp_path / "a")
        )
