"""GGUF Llama → keras-hub causal LM (`GGUFLlamaCausalLM`)."""

import logging
import time

from tf_adapters.models.gguf.gguf_reader import read_llama_gguf
from tf_adapters.models.gguf.llama_classes import GGUFLlamaBackbone
from tf_adapters.models.gguf.llama_classes import GGUFLlamaCausalLM
from tf_adapters.models.gguf.llama_classes import GGUFLlamaCausalLMPreprocessor
from tf_adapters.models.gguf.llama_classes import GGUFLlamaTokenizer
from tf_adapters.models.weights import assign

log = logging.getLogger(__name__)

_CONTROL = 3  # GGUF token type of control (special) tokens


def convert_gguf(path, sequence_length=256, dtype="float32"):
    """Builds a keras-hub causal LM from a Llama-architecture GGUF file.

    Quantized tensors are dequantized to float32 with the `gguf` package.

    Args:
        path: str. The `.gguf` file.
        sequence_length: int. The preprocessor's sequence length.
        dtype: str. The model's dtype policy. Defaults to `"float32"`.

    Returns:
        `GGUFLlamaCausalLM` with its tokenizer and preprocessor.
    """
    log.info("Converting %s to keras-hub (dequantizing to float32)", path)
    start = time.perf_counter()
    source = read_llama_gguf(path)
    log.info("read %d tensors", len(source.weights))
    backbone = build_backbone(source, dtype=dtype)
    tokenizer = build_tokenizer(source)
    log.info("converted in %.1f s", time.perf_counter() - start)
    preprocessor = GGUFLlamaCausalLMPreprocessor(
        tokenizer,
        sequence_length=sequence_length,
        add_start_token=False,
    )
    return GGUFLlamaCausalLM(backbone, preprocessor=preprocessor)


def build_backbone(source, dtype="float32"):
    c = source.config
    backbone = GGUFLlamaBackbone(
        vocabulary_size=c["vocabulary_size"],
        num_layers=c["num_layers"],
        num_query_heads=c["num_query_heads"],
        num_key_value_heads=c["num_key_value_heads"],
        hidden_dim=c["hidden_dim"],
        intermediate_dim=c["intermediate_dim"],
        rope_max_wavelength=c["rope_max_wavelength"],
        layer_norm_epsilon=c["layer_norm_epsilon"],
        tie_word_embeddings=c["tie_word_embeddings"],
        dtype=dtype,
    )
    w = source.weights
    d, heads = c["hidden_dim"], c["num_query_heads"]
    head_dim = d // heads
    kv_heads, ffn = c["num_key_value_heads"], c["intermediate_dim"]

    def put(variable, value):
        assign(variable, value, "GGUF file")

    put(backbone.token_embedding.embeddings, w["token_embd.weight"])
    if not c["tie_word_embeddings"]:
        put(backbone.token_embedding.reverse_embeddings, w["output.weight"].T)
    # keras-hub variable (by its public path) ← GGUF tensor
    # `blk.{i}.{name}.weight`, whose matrices are (out, in): transposed, then
    # split into heads.
    variables = {v.path: v for v in backbone.weights}
    for i in range(c["num_layers"]):
        for path, name, shape in [
            ("self_attention_layernorm/scale", "attn_norm", None),
            ("feedforward_layernorm/scale", "ffn_norm", None),
            ("self_attention/query/kernel", "attn_q", (d, heads, head_dim)),
            ("self_attention/key/kernel", "attn_k", (d, kv_heads, head_dim)),
            ("self_attention/value/kernel", "attn_v", (d, kv_heads, head_dim)),
            (
                "self_attention/attention_output/kernel",
                "attn_output",
                (heads, head_dim, d),
            ),
            ("feedforward_gate_dense/kernel", "ffn_gate", (d, ffn)),
            ("feedforward_intermediate_dense/kernel", "ffn_up", (d, ffn)),
            ("feedforward_output_dense/kernel", "ffn_down", (ffn, d)),
        ]:
            variable = variables[f"transformer_layer_{i}/{path}"]
            value = w[f"blk.{i}.{name}.weight"]
            put(variable, value if shape is None else value.T.reshape(shape))
    put(backbone.layer_norm.scale, w["output_norm.weight"])
    return backbone


def build_tokenizer(source):
    vocabulary = {token: i for i, token in enumerate(source.tokens)}
    special = [
        t
        for t, kind in zip(source.tokens, source.token_types, strict=True)
        if kind == _CONTROL
    ]
    bos = source.tokens[source.special.get("bos", 1)]
    eos = source.tokens[source.special.get("eos", 2)]
    misc = [t for t in special if t not in (bos, eos)]
    return GGUFLlamaTokenizer(
        vocabulary=vocabulary,
        merges=source.merges,
        bos_token=bos,
        eos_token=eos,
        misc_special_tokens=misc,
    )
