"""The embedded SmolLM2-135M both ways through PEFT: a PEFT LoRA trained on
the Hugging Face export of the embedded base loads here with PEFT's logits,
and one of ours loads in PEFT with ours."""

import numpy as np
import pytest

peft = pytest.importorskip("peft")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tf_adapters as tfa  # noqa: E402
from tf_adapters.injection.lifecycle import adapter_variables  # noqa: E402

PROMPT = "The capital of France is"
TOLERANCE = 1e-4  # logits reach about 27; the two bases alone differ 7e-5


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    try:
        model = tfa.load_base()
    except ModuleNotFoundError as e:
        pytest.skip(str(e))
    folder = tfa.export_hf(model, str(tmp_path_factory.mktemp("hf") / "m"))
    ids = np.asarray(model.preprocessor.tokenizer(PROMPT))[None, :]
    return model, folder, ids


def _ours(model, ids):
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    return np.asarray(model(inputs))


def _theirs(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def _hf(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder).eval()


def test_peft_lora_loads_onto_the_embedded_model(smollm2, tmp_path):
    model, folder, ids = smollm2
    torch.manual_seed(0)
    config = peft.LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    trained = peft.get_peft_model(_hf(folder), config)
    with torch.no_grad():  # as after training: B no longer zero
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.copy_(0.02 * torch.randn_like(param))
    trained.eval().save_pretrained(tmp_path / "peft")
    theirs = _theirs(trained, ids)
    assert np.abs(theirs - _theirs(_hf(folder), ids)).max() > 0.1
    tfa.load_adapter(model, str(tmp_path / "peft"), name="from_peft")
    try:
        assert np.abs(_ours(model, ids) - theirs).max() < TOLERANCE
    finally:
        tfa.delete_adapter(model, "from_peft")


def test_our_lora_loads_in_peft(smollm2, tmp_path):
    model, folder, ids = smollm2
    tfa.add_adapter(model, tfa.LoraConfig(rank=8), "ours")
    try:
        rng = np.random.default_rng(0)
        for var in adapter_variables(model.backbone, "ours").values():
            if "lora_b" in var.path:
                var.assign(rng.normal(0, 0.02, var.shape))
        ours = _ours(model, ids)
        tfa.save_adapter(
            model,
            str(tmp_path / "peft"),
            format="peft",
            base_model_name_or_path=folder,
        )
    finally:
        tfa.delete_adapter(model, "ours")
    loaded = peft.PeftModel.from_pretrained(_hf(folder), str(tmp_path / "peft"))
    theirs = _theirs(loaded.eval(), ids)
    assert np.abs(theirs - _theirs(_hf(folder), ids)).max() > 0.1
    assert np.abs(ours - theirs).max() < TOLERANCE
