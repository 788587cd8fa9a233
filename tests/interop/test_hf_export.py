"""`export_hf`: Hugging Face checkpoints of adapted keras-hub models, checked
against `transformers` on tiny random models and the embedded SmolLM2."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_tiny  # noqa: E402
import tiny_models  # noqa: E402

import tf_adapters as tfa  # noqa: E402
from tf_adapters.core.layer_paths import iter_slots  # noqa: E402
from tf_adapters.injection.lifecycle import adapter_variables  # noqa: E402
from tf_adapters.interop import hf_export  # noqa: E402
from tf_adapters.interop.hf_export import export_hf  # noqa: E402

TOLERANCE = 1e-5
PROMPT = "The capital of France is"


def _wide_gemma():
    """Gemma with `num_heads * head_dim != hidden_size` (as Gemma 7B)."""
    torch.manual_seed(0)
    config = transformers.GemmaConfig(
        vocab_size=96,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=64,
    )
    return transformers.GemmaForCausalLM(config).eval()


def _keras_from_hf(kind, folder):
    if kind == "gemma_wide":
        _wide_gemma().save_pretrained(folder)
    else:
        hf_tiny.save_hf(kind, folder)
    return hf_tiny.keras_backbone(folder)


def _randomize(backbone, name="default", seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    for var in adapter_variables(backbone, name).values():
        var.assign(rng.normal(0, scale, var.shape).astype("float32"))


def _snapshot(model):
    """Everything `export_hf` must leave as it was."""
    return {
        "adapters": tfa.list_adapters(model),
        "weights": [(id(v), v.numpy().copy()) for v in model.weights],
        "slots": [(s.path, id(s.layer)) for s in iter_slots(model)],
    }


def _assert_unchanged(model, before):
    after = _snapshot(model)
    assert after["adapters"] == before["adapters"]
    assert after["slots"] == before["slots"]
    assert [i for i, _ in after["weights"]] == [i for i, _ in before["weights"]]
    for (_, new), (_, old) in zip(
        after["weights"], before["weights"], strict=True
    ):
        np.testing.assert_array_equal(new, old)


def _load_hf(path):
    return transformers.AutoModelForCausalLM.from_pretrained(path).eval()


@pytest.mark.parametrize(
    "kind, method",
    [
        ("llama", "lora"),
        ("llama", "ia3"),
        ("gemma", "lora"),
        ("gemma_wide", "lora"),
        ("gpt2", "lora"),
        ("qwen2", "lora"),
    ],
)
def test_merged_adapter_gives_transformers_the_same_logits(
    kind, method, tmp_path
):
    backbone = _keras_from_hf(kind, str(tmp_path / "source"))
    base = hf_tiny.keras_logits(backbone)
    config = tfa.LoraConfig(rank=2) if method == "lora" else tfa.IA3Config()
    tfa.add_adapter(backbone, config, "default")
    _randomize(backbone)
    expected = hf_tiny.keras_logits(backbone)
    assert np.abs(expected - base).max() > 1e-2  # the adapter matters
    before = _snapshot(backbone)

    path = export_hf(backbone, str(tmp_path / "hf"))

    logits = hf_tiny.hf_logits(_load_hf(path))
    diff = np.abs(logits - expected).max()
    print(f"{kind} {method}: max |logit difference| {diff:.2e}")
    assert diff < TOLERANCE
    _assert_unchanged(backbone, before)
    np.testing.assert_array_equal(hf_tiny.keras_logits(backbone), expected)


def test_disabled_and_inactive_adapters_are_left_out(tmp_path):
    backbone = _keras_from_hf("llama", str(tmp_path / "source"))
    base = hf_tiny.keras_logits(backbone)
    tfa.add_adapter(backbone, tfa.BottleneckConfig(), "bottleneck")
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), "lora")
    # A second LoRA on the same layers: wrappers two deep.
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=3), "other")
    for seed, name in enumerate(["bottleneck", "lora", "other"]):
        _randomize(backbone, name, seed=seed)
    tfa.set_active_adapter(backbone, "lora")
    lora = hf_tiny.keras_logits(backbone)
    before = _snapshot(backbone)

    export_hf(backbone, str(tmp_path / "lora"))
    _assert_unchanged(backbone, before)
    tfa.merge_adapter(backbone)  # merged by the user: exported as it is
    export_hf(backbone, str(tmp_path / "merged"))
    assert tfa.list_adapters(backbone) == ["bottleneck", "lora", "other"]
    tfa.unmerge_adapter(backbone)
    tfa.disable_adapters(backbone)
    export_hf(backbone, str(tmp_path / "base"))

    for name, expected in (("lora", lora), ("merged", lora), ("base", base)):
        logits = hf_tiny.hf_logits(_load_hf(str(tmp_path / name)))
        np.testing.assert_allclose(logits, expected, atol=TOLERANCE, rtol=0)


def test_causal_lm_with_tokenizer(tmp_path):
    causal_lm = tfa.add_adapter(
        tiny_models.gpt2_causal_lm(), tfa.LoraConfig(rank=2)
    )
    tiny_models.randomize_adapter(causal_lm)
    path = export_hf(causal_lm, str(tmp_path / "hf"))

    assert sorted(os.listdir(path)) == [
        "config.json",
        "merges.txt",
        "model.safetensors",
        "tokenizer_config.json",
        "vocab.json",
    ]
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    keras_tokenizer = causal_lm.preprocessor.tokenizer
    text = " airplane at the airport"
    ids = np.asarray(keras_tokenizer(text)).tolist()
    assert hf_tokenizer(text)["input_ids"] == ids
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    end = keras_tokenizer.token_to_id("<|endoftext|>")
    assert config["eos_token_id"] == config["bos_token_id"] == end
    np.testing.assert_allclose(
        hf_tiny.hf_logits(_load_hf(path), np.array([ids])),
        hf_tiny.keras_logits(causal_lm.backbone, np.array([ids])),
        atol=TOLERANCE,
        rtol=0,
    )


def _keras_greedy(backbone, ids, steps):
    ids = list(ids)
    for _ in range(steps):
        x = np.array([ids], "int32")
        ids.append(int(hf_tiny.keras_logits(backbone, x)[0, -1].argmax()))
    return ids


def test_embedded_smollm2_round_trips_through_transformers(tmp_path):
    model = tfa.load_base()
    keras_tokenizer = model.preprocessor.tokenizer
    path = export_hf(model, str(tmp_path / "smollm2"))

    hf_model = _load_hf(path)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    ids = np.asarray(keras_tokenizer(PROMPT)).tolist()
    assert hf_tokenizer(PROMPT)["input_ids"] == ids

    expected = hf_tiny.keras_logits(model.backbone, np.array([ids]))
    logits = hf_tiny.hf_logits(hf_model, np.array([ids]))
    diff = np.abs(logits - expected).max()
    print(f"SmolLM2-135M: max |logit difference| {diff:.2e}")
    assert diff < 1e-4

    with torch.no_grad():
        generated = hf_model.generate(
            torch.tensor([ids]), do_sample=False, max_new_tokens=8
        )[0].tolist()
    assert generated == _keras_greedy(model.backbone, ids, 8)
    assert hf_tokenizer.decode(generated) == keras_tokenizer.detokenize(
        generated
    )


def test_embedded_smollm2_with_lora_and_start_token(tmp_path):
    model = tfa.load_base()
    model.preprocessor.add_start_token = True
    tfa.add_adapter(model, tfa.LoraConfig(rank=8), "default")
    rng = np.random.default_rng(0)  # as after training: B no longer zero
    for var in adapter_variables(model.backbone, "default").values():
        if "lora_b" in var.path:
            var.assign(rng.normal(0, 0.02, var.shape).astype("float32"))
    ids = np.asarray(model.preprocessor.tokenizer(PROMPT)).tolist()
    expected = hf_tiny.keras_logits(model.backbone, np.array([ids]))

    path = export_hf(model, str(tmp_path / "smollm2_lora"))

    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    start = model.preprocessor.tokenizer.start_token_id
    assert hf_tokenizer(PROMPT)["input_ids"] == [start, *ids]
    logits = hf_tiny.hf_logits(_load_hf(path), np.array([ids]))
    # The export is the merged model: against the keras model merged the
    # same way, the difference is the two frameworks' float32 arithmetic.
    tfa.merge_adapter(model)
    merged = hf_tiny.keras_logits(model.backbone, np.array([ids]))
    tfa.unmerge_adapter(model)
    diff = np.abs(logits - merged).max()
    print(f"SmolLM2-135M merged LoRA: max |logit difference| {diff:.2e}")
    assert diff < 1e-4
    # Against the unmerged model, merging adds its own rounding in each of
    # 30 layers' kernels; logits reach about 30.
    assert np.abs(logits - expected).max() < 5e-4


@pytest.mark.parametrize(
    "config, words",
    [
        (
            tfa.BottleneckConfig(),
            ["'default' (bottleneck)", "export_saved_model"],
        ),
        (
            tfa.PromptTuningConfig(num_virtual_tokens=2),
            ["'default' (prompt_tuning)", 'format="peft"'],
        ),
    ],
)
def test_unmergeable_adapters_are_refused(config, words, tmp_path):
    backbone = tfa.add_adapter(tiny_models.backbone(), config)
    _randomize(backbone)
    before = _snapshot(backbone)
    x = tiny_models.inputs()
    outputs = np.asarray(backbone(x))

    with pytest.raises(ValueError) as info:
        export_hf(backbone, str(tmp_path / "hf"))

    for word in words:
        assert word in str(info.value)
    assert not os.path.exists(tmp_path / "hf")
    _assert_unchanged(backbone, before)
    np.testing.assert_array_equal(np.asarray(backbone(x)), outputs)


def test_other_families_are_refused_naming_those_that_work(tmp_path):
    with pytest.raises(ValueError, match="Llama3, Gemma, GPT2, Qwen"):
        export_hf(tiny_models.backbone("opt"), str(tmp_path / "hf"))
    with pytest.raises(ValueError, match="Gemma 2"):
        export_hf(_gemma2_backbone(), str(tmp_path / "hf"))


def _gemma2_backbone():
    import keras_hub

    return keras_hub.models.GemmaBackbone(
        vocabulary_size=64,
        num_layers=1,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        head_dim=4,
        use_post_ffw_norm=True,
        use_post_attention_norm=True,
    )


def test_the_folder_is_written_atomically(tmp_path, monkeypatch):
    backbone = tfa.add_adapter(tiny_models.backbone(), tfa.LoraConfig(rank=2))
    path = str(tmp_path / "hf")
    export_hf(backbone, path)
    with open(os.path.join(path, "config.json")) as f:
        written = f.read()

    def fail(weights, path):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(hf_export, "_save_safetensors", fail)
    with pytest.raises(OSError, match="disk full"):
        export_hf(backbone, path)
    with open(os.path.join(path, "config.json")) as f:
        assert f.read() == written
    assert sorted(os.listdir(tmp_path)) == ["hf"]
    assert tfa.list_adapters(backbone) == ["default"]

    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep")
    monkeypatch.undo()
    with pytest.raises(FileExistsError):
        export_hf(backbone, str(other))
    with pytest.raises(FileExistsError):
        export_hf(backbone, path, overwrite=False)
