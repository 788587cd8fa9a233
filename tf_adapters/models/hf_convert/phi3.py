"""Phi-3 checkpoints → keras-hub `Phi3Backbone` (`model.*` weights).

Refused: another activation than SiLU, partial rotary embeddings, a sliding
window shorter than the context, RoPE scaling other than LongRoPE, and a
LongRoPE attention factor keras-hub computes differently. The head is kept
as the token embedding's `reverse_embeddings`, tied or not.
"""

import math

import keras_hub

from tf_adapters.models.hf_convert.reading import assign
from tf_adapters.models.hf_convert.reading import check_heads
from tf_adapters.models.hf_convert.reading import linear
from tf_adapters.models.hf_convert.reading import variables_by_path

backbone_cls = keras_hub.models.Phi3Backbone

_LONGROPE = ("longrope", "su", "yarn")  # `transformers` reads all as LongRoPE


def convert_config(config):
    """keras-hub `Phi3Backbone` arguments from a Phi-3 `config.json`."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config["num_key_value_heads"] or heads
    config.require("hidden_act", "silu")
    check_heads(config, hidden, heads)
    if heads % kv_heads:
        config.refuse(
            f"num_key_value_heads={kv_heads}",
            f"does not divide num_attention_heads={heads}",
        )
    max_length = config["max_position_embeddings"]
    window = config["sliding_window"]
    if window is not None and window < max_length:
        config.refuse(
            f"sliding_window={window}",
            f"is shorter than max_position_embeddings={max_length} (sliding "
            "window attention, which keras-hub's Phi-3 does not have)",
        )
    rope_type, theta, partial, rope = config.rope(
        ("rope_theta",), ("partial_rotary_factor",), 1.0
    )
    if partial != 1.0:
        config.refuse(
            f"partial_rotary_factor={partial}",
            "is set (partial rotary embeddings)",
        )
    original = config["original_max_position_embeddings"]
    backbone_config = {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "hidden_dim": hidden,
        "intermediate_dim": config["intermediate_size"],
        "num_query_heads": heads,
        "num_key_value_heads": kv_heads,
        "layer_norm_epsilon": config["rms_norm_eps"],
        "dropout": config["resid_pdrop"],
        "max_sequence_length": max_length,
        "pretraining_sequence_length": original,
        "rope_max_wavelength": theta,
    }
    if rope_type == "default":
        return backbone_config
    if rope_type not in _LONGROPE:
        config.refuse(
            f"rope_type={rope_type!r}",
            "is not supported (keras-hub's Phi-3 has LongRoPE, `su`, only)",
        )
    # keras-hub scales cos/sin by sqrt(1 + log(s) / log(original)) with
    # s = max_position_embeddings / original; `transformers` lets
    # `factor` or `attention_factor` override s or the result.
    ratio = max_length / original
    keras_factor = (
        math.sqrt(1 + math.log(ratio) / math.log(original))
        if ratio > 1
        else 1.0
    )
    factor = rope.get("factor") or ratio
    hf_factor = rope.get("attention_factor")
    if hf_factor is None:
        hf_factor = (
            math.sqrt(1 + math.log(factor) / math.log(original))
            if factor > 1
            else 1.0
        )
    if not math.isclose(hf_factor, keras_factor, rel_tol=1e-6):
        config.refuse(
            f"rope_parameters={rope!r}",
            f"gives a LongRoPE attention factor of {hf_factor:.6g}; "
            f"keras-hub's is {keras_factor:.6g}",
        )
    backbone_config.update(
        rope_scaling_type="su",
        rope_scaling_short_factor=list(rope["short_factor"]),
        rope_scaling_long_factor=list(rope["long_factor"]),
    )
    return backbone_config


def convert_weights(backbone, loader, config):
    """Ports Phi-3 weights (`model.*`) into a `Phi3Backbone`."""
    loader.find_prefix("embed_tokens.weight")
    variables = variables_by_path(backbone)
    d, heads = backbone.hidden_dim, backbone.num_query_heads
    kv_heads, ffn = backbone.num_key_value_heads, backbone.intermediate_dim
    head_dim = d // heads

    embeddings = loader.get(
        "embed_tokens.weight", (backbone.vocabulary_size, d)
    )
    assign(backbone.token_embedding.embeddings, embeddings)
    if config["tie_word_embeddings"]:
        if loader.has("lm_head.weight", prefixed=False):
            loader.mark_used("lm_head.weight", prefixed=False)
        head = embeddings
    else:
        head = loader.get("lm_head.weight", embeddings.shape, prefixed=False)
    assign(backbone.token_embedding.reverse_embeddings, head.T)

    q_size, kv_size = heads * head_dim, kv_heads * head_dim
    for i in range(backbone.num_layers):
        hf, keras = f"layers.{i}", f"transformer_layer_{i}"
        # The fused projection's rows: all queries, then keys, then values.
        qkv = loader.get(
            f"{hf}.self_attn.qkv_proj.weight", (q_size + 2 * kv_size, d)
        )
        for name, rows, n in [
            ("query", qkv[:q_size], heads),
            ("key", qkv[q_size : q_size + kv_size], kv_heads),
            ("value", qkv[q_size + kv_size :], kv_heads),
        ]:
            assign(
                variables[f"{keras}/attention/{name}/kernel"],
                rows.T.reshape(d, n, head_dim),
            )
        out = loader.get(f"{hf}.self_attn.o_proj.weight", (d, q_size))
        assign(
            variables[f"{keras}/attention/attention_output/kernel"],
            out.T.reshape(heads, head_dim, d),
        )
        # The fused MLP input's rows: the gate, then the up projection.
        gate_up = loader.get(f"{hf}.mlp.gate_up_proj.weight", (2 * ffn, d))
        assign(
            variables[f"{keras}/feedforward_gate_dense/kernel"],
            gate_up[:ffn].T,
        )
        assign(
            variables[f"{keras}/feedforward_intermediate_dense/kernel"],
            gate_up[ffn:].T,
        )
        assign(
            variables[f"{keras}/feedforward_output_dense/kernel"],
            linear(loader, f"{hf}.mlp.down_proj.weight", ffn, (d,)),
        )
        for hf_norm, keras_norm in [
            ("input_layernorm", "pre_attention_layernorm"),
            ("post_attention_layernorm", "post_attention_layernorm"),
        ]:
            assign(
                variables[f"{keras}/{keras_norm}/scale"],
                loader.get(f"{hf}.{hf_norm}.weight", (d,)),
            )
    assign(
        variables["sequence_output_layernorm/scale"],
        loader.get("norm.weight", (d,)),
    )
    return backbone
