"""GPT-NeoX checkpoints → keras-hub `GPTNeoXBackbone` (`gpt_neox.*`
weights).

Refused: sequential residuals (`use_parallel_residual=False`), an
activation other than the tanh GELU, RoPE scaling and an untied head.
Biases the checkpoint leaves out (`attention_bias=False`) are zeros.
"""

import keras_hub

from tf_adapters.models.hf_convert.reading import assign
from tf_adapters.models.hf_convert.reading import bias
from tf_adapters.models.hf_convert.reading import check_heads
from tf_adapters.models.hf_convert.reading import layer_norm
from tf_adapters.models.hf_convert.reading import linear
from tf_adapters.models.hf_convert.reading import port_tied_head
from tf_adapters.models.hf_convert.reading import variables_by_path

backbone_cls = keras_hub.models.GPTNeoXBackbone

# The tanh approximation of GELU that keras-hub's GPT-NeoX uses, under its
# `transformers` names. Plain "gelu" (the erf form, used by Pythia) is not
# it: about 1e-3 apart per activation.
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def convert_config(config):
    """keras-hub `GPTNeoXBackbone` arguments from a GPT-NeoX
    `config.json`."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    config.require("use_parallel_residual", True)
    act = config["hidden_act"]
    if act not in TANH_GELU:
        config.refuse(
            f"hidden_act={act!r}",
            "is not the tanh approximation of GELU that keras-hub's "
            f"GPT-NeoX uses ({' / '.join(TANH_GELU)})",
        )
    check_heads(config, hidden, heads)
    rope_type, theta, partial, _ = config.rope(
        ("rope_theta", "rotary_emb_base"), ("rotary_pct",), 0.25
    )
    if rope_type != "default":
        config.refuse(f"rope_type={rope_type!r}", "(RoPE scaling) is set")
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": heads,
        "hidden_dim": hidden,
        "intermediate_dim": config["intermediate_size"],
        "dropout": config["hidden_dropout"],
        "rotary_percentage": partial,
        "rotary_max_wavelength": theta,
        "layer_norm_epsilon": config["layer_norm_eps"],
        "max_sequence_length": config["max_position_embeddings"],
    }


def convert_weights(backbone, loader, config):
    """Ports GPT-NeoX weights (`gpt_neox.*`) into a `GPTNeoXBackbone`."""
    loader.find_prefix("embed_in.weight")
    variables = variables_by_path(backbone)
    d, heads = backbone.hidden_dim, backbone.num_heads
    head_dim, ffn = d // heads, backbone.intermediate_dim
    has_bias = config["attention_bias"]

    embeddings = loader.get("embed_in.weight", (backbone.vocabulary_size, d))
    assign(backbone.token_embedding.embeddings, embeddings)
    port_tied_head(
        loader, config, embeddings, ["embed_out.weight", "lm_head.weight"]
    )

    for i in range(backbone.num_layers):
        hf, keras = f"layers.{i}", f"transformer_layer_{i}"
        attention = f"{keras}/self_attention"
        # The fused projection's outputs are laid out (heads, 3, head_dim):
        # per head its query, key and value, as keras-hub's kernel is.
        assign(
            variables[f"{attention}/query_key_value/kernel"],
            linear(
                loader,
                f"{hf}.attention.query_key_value.weight",
                d,
                (heads, 3 * head_dim),
            ),
        )
        assign(
            variables[f"{attention}/query_key_value/bias"],
            bias(
                loader,
                f"{hf}.attention.query_key_value.bias",
                (heads, 3 * head_dim),
                has_bias,
            ),
        )
        assign(
            variables[f"{attention}/attention_output/kernel"],
            linear(loader, f"{hf}.attention.dense.weight", d, (d,)),
        )
        assign(
            variables[f"{attention}/attention_output/bias"],
            bias(loader, f"{hf}.attention.dense.bias", (d,), has_bias),
        )
        layer_norm(
            loader,
            variables,
            f"{keras}/self_attention_layer_norm",
            f"{hf}.input_layernorm",
            d,
        )
        layer_norm(
            loader,
            variables,
            f"{keras}/feedforward_layer_norm",
            f"{hf}.post_attention_layernorm",
            d,
        )
        for fc, name, dims in [
            ("dense_h_to_4h", "feedforward_intermediate_dense", (d, ffn)),
            ("dense_4h_to_h", "feedforward_output_dense", (ffn, d)),
        ]:
            assign(
                variables[f"{keras}/{name}/kernel"],
                linear(loader, f"{hf}.mlp.{fc}.weight", dims[0], (dims[1],)),
            )
            assign(
                variables[f"{keras}/{name}/bias"],
                bias(loader, f"{hf}.mlp.{fc}.bias", (dims[1],)),
            )
    layer_norm(loader, variables, "layer_norm", "final_layer_norm", d)
    return backbone
