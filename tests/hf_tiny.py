"""Tiny random Hugging Face causal LMs and their keras-hub conversions, for
the PEFT / Hugging Face interoperability tests (torch, transformers, peft)."""

import numpy as np

IDS = np.array([[5, 7, 9, 11, 13, 2, 3, 4, 17, 19]])
# Every linear module of each family, as PEFT's `target_modules`.
PEFT_TARGETS = {
    "gpt2": ["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "gpt_neox": [
        "query_key_value",
        "attention.dense",
        "dense_h_to_4h",
        "dense_4h_to_h",
    ],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
}
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"]
LLAMA_TARGETS += ["up_proj", "down_proj"]


def peft_targets(family):
    """PEFT `target_modules` naming every linear module of `family`."""
    return PEFT_TARGETS.get(family, LLAMA_TARGETS)


# OPT / GPT-NeoX / Phi-3 (converted by tf_adapters.models.hf_convert):
# `transformers` initializes with std 0.02; 0.1 makes activations O(1), so
# that e.g. erf- vs tanh-GELU (3e-4 here) or a wrong rotary fraction shows.
INIT_STD = 0.1
TINY = dict(
    vocab_size=96,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=64,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


def _converted_family(family, overrides):
    """OPT, GPT-NeoX and Phi-3 (no keras-hub converter), or `None`."""
    import transformers

    if family == "opt":
        config = transformers.OPTConfig(
            **{"ffn_dim": 48, "init_std": INIT_STD, **TINY, **overrides}
        )
        return transformers.OPTForCausalLM(config)
    if family == "gpt_neox":
        config = transformers.GPTNeoXConfig(
            **{
                "intermediate_size": 48,
                "initializer_range": INIT_STD,
                "hidden_act": "gelu_new",
                "tie_word_embeddings": True,
                "rotary_pct": 0.5,
                "rotary_emb_base": 500.0,
                "layer_norm_eps": 1e-4,
                **TINY,
                **overrides,
            }
        )
        return transformers.GPTNeoXForCausalLM(config)
    if family == "phi3":
        config = transformers.Phi3Config(
            **{
                "intermediate_size": 48,
                "initializer_range": INIT_STD,
                "num_key_value_heads": 2,
                "rms_norm_eps": 1e-4,
                "rope_theta": 500.0,
                **TINY,
                **overrides,
            }
        )
        return transformers.Phi3ForCausalLM(config)
    return None


def hf_model(family, seed=0, **overrides):
    """A tiny random `transformers` causal LM of `family` (norm weights and
    biases perturbed so that they matter); `overrides` go to the config of
    the OPT / GPT-NeoX / Phi-3 families."""
    import torch
    import transformers

    torch.manual_seed(seed)
    converted = _converted_family(family, overrides)
    if converted is not None:
        return _perturbed(converted, biases=True)
    common = dict(vocab_size=96, max_position_embeddings=64)
    llama_like = dict(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        **common,
    )
    if family == "llama":
        model = transformers.LlamaForCausalLM(
            transformers.LlamaConfig(tie_word_embeddings=False, **llama_like)
        )
    elif family == "mistral":
        model = transformers.MistralForCausalLM(
            transformers.MistralConfig(sliding_window=None, **llama_like)
        )
    elif family == "qwen3":
        model = transformers.Qwen3ForCausalLM(
            transformers.Qwen3Config(head_dim=8, **llama_like)
        )
    elif family == "qwen2":
        model = transformers.Qwen2ForCausalLM(
            transformers.Qwen2Config(**llama_like)
        )
    elif family == "gemma":
        model = transformers.GemmaForCausalLM(
            transformers.GemmaConfig(head_dim=8, **llama_like)
        )
    elif family == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=96,
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=64,
            bos_token_id=0,
            eos_token_id=0,
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        raise ValueError(family)
    return _perturbed(model)


def _perturbed(model, biases=False):
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if (
                "norm" in name
                or ".ln_" in name
                or (biases and name.endswith(".bias"))
            ):
                param.add_(0.1 * torch.randn_like(param))
    return model.eval()


def save_hf(family, folder, seed=0):
    hf_model(family, seed).save_pretrained(folder)
    return str(folder)


def hf_logits(model, ids=IDS):
    import torch

    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def keras_backbone(folder):
    """keras-hub's conversion of HF folder `folder`, with the fixes
    `load_base` applies (`tf_adapters.models.hf_fixes`)."""
    import keras_hub

    from tf_adapters.models.hf_convert import MODEL_TYPES
    from tf_adapters.models.hf_convert import convert_hf_backbone
    from tf_adapters.models.hf_fixes import fix_hf_conversion
    from tf_adapters.models.hf_fixes import hf_config

    if hf_config(folder)["model_type"] in MODEL_TYPES:
        return convert_hf_backbone(str(folder))
    backbone = keras_hub.models.Backbone.from_preset(str(folder))
    fix_hf_conversion(backbone, folder)
    return backbone


def keras_logits(backbone, ids=IDS):
    hidden = backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    return np.asarray(backbone.token_embedding(hidden, reverse=True))
