"""OPT checkpoints → keras-hub `OPTBackbone` (`model.decoder.*` weights).

Refused: post-norm (`do_layer_norm_before=False`), a removed final norm,
`word_embed_proj_dim != hidden_size`, another activation than ReLU and an
untied head. Biases and norm parameters the checkpoint leaves out
(`enable_bias=False`, `layer_norm_elementwise_affine=False`) are their
neutral values.
"""

import keras_hub

from tf_adapters.models.hf_convert.reading import assign
from tf_adapters.models.hf_convert.reading import bias
from tf_adapters.models.hf_convert.reading import check_heads
from tf_adapters.models.hf_convert.reading import layer_norm
from tf_adapters.models.hf_convert.reading import linear
from tf_adapters.models.hf_convert.reading import port_tied_head
from tf_adapters.models.hf_convert.reading import variables_by_path

backbone_cls = keras_hub.models.OPTBackbone


def convert_config(config):
    """keras-hub `OPTBackbone` arguments from an OPT `config.json`."""
    hidden = config["hidden_size"]
    config.require("do_layer_norm_before", True)
    config.require("_remove_final_layer_norm", False)
    config.require("activation_function", "relu")
    proj = config["word_embed_proj_dim"]
    if proj is not None and proj != hidden:
        config.refuse(
            f"word_embed_proj_dim={proj}",
            f"differs from hidden_size={hidden} (projected embeddings)",
        )
    check_heads(config, hidden, config["num_attention_heads"])
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": hidden,
        "intermediate_dim": config["ffn_dim"],
        "dropout": config["dropout"],
        "max_sequence_length": config["max_position_embeddings"],
    }


def convert_weights(backbone, loader, config):
    """Ports OPT weights (`model.decoder.*`) into an `OPTBackbone`."""
    # keras-hub's OPT fixes the epsilon of its norms at `nn.LayerNorm`'s.
    if backbone.layer_norm.epsilon != 1e-5:
        raise ValueError("keras-hub's OPTBackbone no longer uses eps=1e-5.")
    loader.find_prefix("embed_tokens.weight")
    variables = variables_by_path(backbone)
    d, heads = backbone.hidden_dim, backbone.num_heads
    head_dim, ffn = d // heads, backbone.intermediate_dim
    has_bias = config["enable_bias"]
    affine = config["layer_norm_elementwise_affine"]

    embeddings = loader.get(
        "embed_tokens.weight", (backbone.vocabulary_size, d)
    )
    assign(backbone.token_embedding.embeddings, embeddings)
    # `OPTLearnedPositionalEmbedding` looks position p up at row p + 2.
    length = backbone.max_sequence_length
    positions = loader.get("embed_positions.weight", (length + 2, d))
    assign(variables["embeddings/position_embedding/embeddings"], positions[2:])
    port_tied_head(loader, config, embeddings, ["lm_head.weight"])

    for i in range(backbone.num_layers):
        hf, keras = f"layers.{i}", f"transformer_layer_{i}"
        for proj, name in [("q", "query"), ("k", "key"), ("v", "value")]:
            assign(
                variables[f"{keras}/self_attention/{name}/kernel"],
                linear(
                    loader,
                    f"{hf}.self_attn.{proj}_proj.weight",
                    d,
                    (heads, head_dim),
                ),
            )
            assign(
                variables[f"{keras}/self_attention/{name}/bias"],
                bias(
                    loader,
                    f"{hf}.self_attn.{proj}_proj.bias",
                    (heads, head_dim),
                    has_bias,
                ),
            )
        out = loader.get(f"{hf}.self_attn.out_proj.weight", (d, d))
        assign(
            variables[f"{keras}/self_attention/attention_output/kernel"],
            out.T.reshape(heads, head_dim, d),
        )
        assign(
            variables[f"{keras}/self_attention/attention_output/bias"],
            bias(loader, f"{hf}.self_attn.out_proj.bias", (d,), has_bias),
        )
        layer_norm(
            loader,
            variables,
            f"{keras}/self_attention_layer_norm",
            f"{hf}.self_attn_layer_norm",
            d,
            affine,
        )
        layer_norm(
            loader,
            variables,
            f"{keras}/feedforward_layer_norm",
            f"{hf}.final_layer_norm",
            d,
            affine,
        )
        for fc, name, dims in [
            ("fc1", "feedforward_intermediate_dense", (d, ffn)),
            ("fc2", "feedforward_output_dense", (ffn, d)),
        ]:
            assign(
                variables[f"{keras}/{name}/kernel"],
                linear(loader, f"{hf}.{fc}.weight", dims[0], (dims[1],)),
            )
            assign(
                variables[f"{keras}/{name}/bias"],
                bias(loader, f"{hf}.{fc}.bias", (dims[1],), has_bias),
            )
    layer_norm(loader, variables, "layer_norm", "final_layer_norm", d, affine)
    return backbone
