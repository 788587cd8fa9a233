"""Tiny random Hugging Face causal LMs and their keras-hub conversions, for
the PEFT / Hugging Face interoperability tests (torch, transformers, peft)."""

import numpy as np

IDS = np.array([[5, 7, 9, 11, 13, 2, 3, 4, 17, 19]])


def hf_model(family, seed=0):
    """A tiny random `transformers` causal LM of `family` (norm scales
    perturbed so that they matter)."""
    import torch
    import transformers

    torch.manual_seed(seed)
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
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or ".ln_" in name:
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

    from tf_adapters.models.hf_fixes import fix_hf_conversion

    backbone = keras_hub.models.Backbone.from_preset(str(folder))
    fix_hf_conversion(backbone, folder)
    return backbone


def keras_logits(backbone, ids=IDS):
    hidden = backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    return np.asarray(backbone.token_embedding(hidden, reverse=True))
