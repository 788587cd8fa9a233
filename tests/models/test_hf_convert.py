"""Hugging Face OPT / GPT-NeoX / Phi-3 checkpoints → keras-hub backbones:
logits match `transformers`, unsupported options are refused."""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_tiny  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from tf_adapters.models import hf_convert  # noqa: E402
from tf_adapters.models.hf_convert import convert_hf_backbone  # noqa: E402

IDS = hf_tiny.IDS


def _hf_model(family, **overrides):
    return hf_tiny.hf_model(family, **overrides)


def _hf_logits(model, ids=IDS):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def _keras_logits(backbone, ids=IDS):
    # As keras-hub's OPT / GPT-NeoX / Phi-3 CausalLMs compute them: the
    # token embedding, reversed (tied for OPT and GPT-NeoX, Phi-3's own
    # `reverse_embeddings`).
    hidden = backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    return np.asarray(backbone.token_embedding(hidden, reverse=True))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny random checkpoints, saved once: {family: (model, folder)}."""
    out = {}
    for family in hf_convert.MODEL_TYPES:
        model = _hf_model(family)
        folder = tmp_path_factory.mktemp(family)
        model.save_pretrained(folder)
        out[family] = (model, folder)
    return out


def _max_diff(model, backbone, ids=IDS):
    return np.abs(_keras_logits(backbone, ids) - _hf_logits(model, ids)).max()


def test_opt_logits_and_config(saved):
    model, folder = saved["opt"]
    backbone = convert_hf_backbone(str(folder))
    assert type(backbone).__name__ == "OPTBackbone"
    diff = _max_diff(model, backbone)
    print(f"opt: max |logit difference| = {diff:.2e}")
    assert diff < 1e-5
    assert backbone.max_sequence_length == 64
    # Row p of keras-hub's position table is row p + 2 of OPT's.
    np.testing.assert_array_equal(
        backbone.get_layer("embeddings").position_embedding.position_embeddings,
        model.model.decoder.embed_positions.weight.detach().numpy()[2:],
    )


def test_gpt_neox_logits_and_config(saved):
    model, folder = saved["gpt_neox"]
    backbone = convert_hf_backbone(str(folder))
    assert type(backbone).__name__ == "GPTNeoXBackbone"
    diff = _max_diff(model, backbone)
    print(f"gpt_neox: max |logit difference| = {diff:.2e}")
    assert diff < 1e-5
    assert backbone.rotary_percentage == 0.5
    assert backbone.rotary_max_wavelength == 500.0
    assert backbone.layer_norm_epsilon == 1e-4
    assert backbone.max_sequence_length == 64


def test_phi3_logits_and_config(saved):
    model, folder = saved["phi3"]
    backbone = convert_hf_backbone(str(folder))
    assert type(backbone).__name__ == "Phi3Backbone"
    diff = _max_diff(model, backbone)
    print(f"phi3: max |logit difference| = {diff:.2e}")
    assert diff < 1e-5
    assert (backbone.num_query_heads, backbone.num_key_value_heads) == (4, 2)
    assert backbone.layer_norm_epsilon == 1e-4
    assert backbone.rope_max_wavelength == 500.0
    assert backbone.rope_scaling_type is None


@pytest.mark.parametrize(
    "family, overrides",
    [
        # No biases, no norm parameters: zeros and ones in keras-hub.
        ("opt", {"enable_bias": False, "layer_norm_elementwise_affine": False}),
        ("gpt_neox", {"attention_bias": False}),
        ("phi3", {"tie_word_embeddings": True}),
    ],
)
def test_variants_match_transformers(tmp_path, family, overrides):
    model = _hf_model(family, **overrides)
    model.save_pretrained(tmp_path)
    assert _max_diff(model, convert_hf_backbone(str(tmp_path))) < 1e-5


def test_phi3_longrope_short_and_long_factors(tmp_path):
    """LongRoPE: short factors up to `original_max_position_embeddings`
    tokens, long factors (and the same attention factor) beyond."""
    rng = np.random.default_rng(0)
    rope = {
        "rope_type": "longrope",
        "rope_theta": 500.0,
        "short_factor": (1 + rng.random(4)).tolist(),
        "long_factor": (2 + 4 * rng.random(4)).tolist(),
    }
    model = _hf_model(
        "phi3", rope_parameters=rope, original_max_position_embeddings=16
    )
    model.save_pretrained(tmp_path)
    backbone = convert_hf_backbone(str(tmp_path))
    assert backbone.rope_scaling_type == "su"
    assert backbone.pretraining_sequence_length == 16
    for ids in (IDS, rng.integers(0, 96, size=(1, 20))):
        # A fresh HF model per length: it keeps the last frequencies.
        fresh = _hf_model(
            "phi3", rope_parameters=rope, original_max_position_embeddings=16
        )
        assert _max_diff(fresh, backbone, ids) < 1e-5, ids.shape


def test_bfloat16_shards_widen_exactly(tmp_path):
    half = _hf_model("phi3").to(torch.bfloat16)
    half.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / hf_convert.INDEX_FILE).exists()
    backbone = convert_hf_backbone(str(tmp_path))
    np.testing.assert_array_equal(
        backbone.token_embedding.embeddings,
        half.model.embed_tokens.weight.detach().float().numpy(),
    )
    # Reloaded in float32 (`half.float()` would keep bfloat16-rounded
    # rotary frequencies).
    model = transformers.Phi3ForCausalLM.from_pretrained(
        tmp_path, dtype=torch.float32
    )
    assert _max_diff(model.eval(), backbone) < 1e-5


def _copy(folder, tmp_path, config_edits=None, weight_edits=None):
    out = tmp_path / "edited"
    shutil.copytree(folder, out)
    config = json.loads((out / "config.json").read_text())
    config.update(config_edits or {})
    (out / "config.json").write_text(json.dumps(config))
    if weight_edits:
        weights = load_file(out / "model.safetensors")
        weights.update(weight_edits)
        save_file(weights, out / "model.safetensors")
    return out


@pytest.mark.parametrize(
    "family, edits, message",
    [
        ("opt", {"do_layer_norm_before": False}, "do_layer_norm_before"),
        ("opt", {"word_embed_proj_dim": 16}, "word_embed_proj_dim=16"),
        ("opt", {"activation_function": "gelu"}, "activation_function"),
        ("gpt_neox", {"use_parallel_residual": False}, "use_parallel_resid"),
        ("gpt_neox", {"hidden_act": "gelu"}, "hidden_act='gelu'"),
        ("gpt_neox", {"tie_word_embeddings": False}, "tie_word_embeddings"),
        (
            "gpt_neox",
            {"rope_parameters": {"rope_type": "linear", "factor": 2.0}},
            "rope_type='linear'",
        ),
        ("phi3", {"sliding_window": 32}, "sliding_window=32"),
        (
            "phi3",
            {
                "rope_parameters": {
                    "rope_theta": 1e4,
                    "partial_rotary_factor": 0.5,
                }
            },
            "partial_rotary_factor",
        ),
        (
            "phi3",
            {"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}},
            "rope_type='dynamic'",
        ),
        ("phi3", {"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ],
)
def test_unsupported_options_are_refused(
    saved, tmp_path, family, edits, message
):
    folder = _copy(saved[family][1], tmp_path, config_edits=edits)
    with pytest.raises(ValueError, match=message) as info:
        convert_hf_backbone(str(folder))
    assert "config.json" in str(info.value)


def test_untied_opt_head_is_refused(saved, tmp_path):
    embeddings = saved["opt"][0].lm_head.weight.detach().numpy()
    folder = _copy(
        saved["opt"][1],
        tmp_path,
        config_edits={"tie_word_embeddings": False},
        weight_edits={"lm_head.weight": embeddings + 1.0},
    )
    with pytest.raises(ValueError, match="tie_word_embeddings=False"):
        convert_hf_backbone(str(folder))


def test_bias_without_a_place_is_refused(saved, tmp_path):
    bias = np.zeros(64, "float32")
    key = "model.layers.1.self_attn.qkv_proj.bias"
    folder = _copy(saved["phi3"][1], tmp_path, weight_edits={key: bias})
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        convert_hf_backbone(str(folder))


def test_shape_mismatch_names_the_weight_and_both_shapes(saved, tmp_path):
    folder = _copy(saved["opt"][1], tmp_path, config_edits={"ffn_dim": 40})
    with pytest.raises(ValueError) as info:
        convert_hf_backbone(str(folder))
    text = str(info.value)
    assert "model.decoder.layers.0.fc1.weight" in text
    assert "(48, 32)" in text and "(40, 32)" in text


def test_other_model_types_are_refused(saved, tmp_path):
    folder = _copy(saved["opt"][1], tmp_path, config_edits={"model_type": "x"})
    with pytest.raises(ValueError, match="model type 'x'"):
        convert_hf_backbone(str(folder))


@pytest.mark.parametrize(
    "family, config_class",
    [
        ("opt", "OPTConfig"),
        ("gpt_neox", "GPTNeoXConfig"),
        ("phi3", "Phi3Config"),
    ],
)
def test_defaults_are_those_of_transformers(family, config_class):
    config = getattr(transformers, config_class)().to_dict()
    rope = config.get("rope_parameters") or {}
    for key, value in hf_convert.HF_DEFAULTS[family].items():
        if value is None:
            continue  # derived from other keys (e.g. from hidden_size)
        if key in ("rotary_pct", "partial_rotary_factor"):
            assert rope["partial_rotary_factor"] == value, key
        elif key in ("rotary_emb_base", "rope_theta"):
            assert rope["rope_theta"] == value, key
        else:
            assert config[key] == value, key
