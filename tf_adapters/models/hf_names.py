"""Hugging Face module names ↔ keras-hub layer paths, per model family.

`model.layers.3.self_attn.q_proj` (a `torch.nn.Linear` of a Hugging Face
Llama) is `transformer_layer_3/self_attention/query` (an `EinsumDense` of
keras-hub's Llama 3). The tables follow keras-hub's own Hugging Face
converters (`keras_hub/src/utils/transformers/convert_*.py`): a Hugging Face
weight is `(out_features, in_features)`; keras-hub transposes it and splits
the feature axes into heads, in the same order (`out = head * head_dim + j`),
so any factor of it maps with a transpose and a reshape (`to_keras_in`,
`to_keras_out`). Fused Hugging Face projections (GPT-2's `c_attn`, Phi-3's
`qkv_proj` and `gate_up_proj`) are several keras-hub layers, each holding a
slice of the output rows.
"""

import dataclasses

import numpy as np

from tf_adapters.core.einsum_spec import EinsumSpec
from tf_adapters.core.layer_paths import PROJECTIONS
from tf_adapters.core.layer_paths import iter_slots


@dataclasses.dataclass(frozen=True)
class HFModule:
    """One keras-hub projection's share of a Hugging Face module.

    Args:
        hf_name: str. The module's name in the Hugging Face causal LM
            (`model.layers.0.self_attn.q_proj`).
        path: str. The keras-hub layer path
            (`transformer_layer_0/self_attention/query`).
        spec: `EinsumSpec`. The keras-hub layer's kernel axes.
        rows: `(start, stop)` of the Hugging Face output features this layer
            holds, or `None` for all of them.
    """

    hf_name: str
    path: str
    spec: EinsumSpec
    rows: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Table:
    """A family's names. `hf_prefix` and `keras_prefix` hold the layer
    index `{i}`; `pairs` are `(Hugging Face suffix, keras-hub suffix)`. A
    Hugging Face suffix listed several times is fused: its output rows are
    its keras-hub layers' outputs, concatenated in the listed order.
    `architecture` is the Hugging Face class. `scaled_embedding`: the
    family multiplies every embedding row by `sqrt(hidden size)` after the
    lookup (keras-hub's Gemma does it after its token embedding, which our
    prompt rows pass through; transformers 5's Gemma inside its embedding
    layer, which PEFT's prompt rows bypass)."""

    hf_prefix: str
    keras_prefix: str
    pairs: tuple
    architecture: str
    scaled_embedding: bool = False


_LLAMA_PAIRS = (
    ("self_attn.q_proj", "self_attention/query"),
    ("self_attn.k_proj", "self_attention/key"),
    ("self_attn.v_proj", "self_attention/value"),
    ("self_attn.o_proj", "self_attention/attention_output"),
    ("mlp.gate_proj", "feedforward_gate_dense"),
    ("mlp.up_proj", "feedforward_intermediate_dense"),
    ("mlp.down_proj", "feedforward_output_dense"),
)

TABLES = {
    "Llama3Backbone": Table(
        "model.layers.{i}.",
        "transformer_layer_{i}/",
        _LLAMA_PAIRS,
        "LlamaForCausalLM",
    ),
    "MistralBackbone": Table(
        "model.layers.{i}.",
        "transformer_layer_{i}/",
        _LLAMA_PAIRS,
        "MistralForCausalLM",
    ),
    "QwenBackbone": Table(
        "model.layers.{i}.",
        "transformer_layer_{i}/",
        _LLAMA_PAIRS,
        "Qwen2ForCausalLM",
    ),
    "Qwen3Backbone": Table(
        "model.layers.{i}.",
        "transformer_layer_{i}/",
        _LLAMA_PAIRS,
        "Qwen3ForCausalLM",
    ),
    "GemmaBackbone": Table(
        "model.layers.{i}.",
        "decoder_block_{i}/",
        (
            ("self_attn.q_proj", "attention/query"),
            ("self_attn.k_proj", "attention/key"),
            ("self_attn.v_proj", "attention/value"),
            ("self_attn.o_proj", "attention/attention_output"),
            ("mlp.gate_proj", "ffw_gating"),
            ("mlp.up_proj", "ffw_gating_2"),
            ("mlp.down_proj", "ffw_linear"),
        ),
        "GemmaForCausalLM",
        scaled_embedding=True,
    ),
    "GPT2Backbone": Table(
        "transformer.h.{i}.",
        "transformer_layer_{i}/",
        (
            ("attn.c_attn", "self_attention/query"),
            ("attn.c_attn", "self_attention/key"),
            ("attn.c_attn", "self_attention/value"),
            ("attn.c_proj", "self_attention/attention_output"),
            ("mlp.c_fc", "feedforward_intermediate_dense"),
            ("mlp.c_proj", "feedforward_output_dense"),
        ),
        "GPT2LMHeadModel",
    ),
    "OPTBackbone": Table(
        "model.decoder.layers.{i}.",
        "transformer_layer_{i}/",
        (
            ("self_attn.q_proj", "self_attention/query"),
            ("self_attn.k_proj", "self_attention/key"),
            ("self_attn.v_proj", "self_attention/value"),
            ("self_attn.out_proj", "self_attention/attention_output"),
            ("fc1", "feedforward_intermediate_dense"),
            ("fc2", "feedforward_output_dense"),
        ),
        "OPTForCausalLM",
    ),
    "GPTNeoXBackbone": Table(
        "gpt_neox.layers.{i}.",
        "transformer_layer_{i}/",
        (
            ("attention.query_key_value", "self_attention/query_key_value"),
            ("attention.dense", "self_attention/attention_output"),
            ("mlp.dense_h_to_4h", "feedforward_intermediate_dense"),
            ("mlp.dense_4h_to_h", "feedforward_output_dense"),
        ),
        "GPTNeoXForCausalLM",
    ),
    "Phi3Backbone": Table(
        "model.layers.{i}.",
        "transformer_layer_{i}/",
        (
            ("self_attn.qkv_proj", "attention/query"),
            ("self_attn.qkv_proj", "attention/key"),
            ("self_attn.qkv_proj", "attention/value"),
            ("self_attn.o_proj", "attention/attention_output"),
            ("mlp.gate_up_proj", "feedforward_gate_dense"),
            ("mlp.gate_up_proj", "feedforward_intermediate_dense"),
            ("mlp.down_proj", "feedforward_output_dense"),
        ),
        "Phi3ForCausalLM",
    ),
}


def table_of(backbone):
    """The `Table` of a backbone's family (through its class hierarchy).

    Raises:
        ValueError: for a family without one, naming those that have one.
    """
    for cls in type(backbone).__mro__:
        if cls.__name__ in TABLES:
            return TABLES[cls.__name__]
    raise ValueError(
        f"{type(backbone).__name__} has no Hugging Face name table; PEFT "
        f"files can be read and written for {sorted(TABLES)}."
    )


def hf_modules(backbone):
    """Every adaptable projection of `backbone` as `HFModule`s, in order.

    Example:
    >>> import keras_hub
    >>> from tf_adapters.models.hf_names import hf_modules
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> key = [m for m in hf_modules(backbone) if m.path.endswith("key")][0]
    >>> key.hf_name, key.rows
    ('transformer.h.0.attn.c_attn', (8, 16))
    """
    table = table_of(backbone)
    layers = {
        slot.path: slot.base
        for slot in iter_slots(backbone)
        if isinstance(slot.base, PROJECTIONS)
    }
    found = []
    for i in range(backbone.num_layers):
        hf_prefix = table.hf_prefix.format(i=i)
        keras_prefix = table.keras_prefix.format(i=i)
        groups = {}
        for hf, keras_suffix in table.pairs:
            groups.setdefault(hf, []).append(keras_prefix + keras_suffix)
        for hf, paths in groups.items():
            missing = [p for p in paths if p not in layers]
            if missing:
                raise ValueError(
                    f"{type(backbone).__name__} has no layer {missing[0]!r} "
                    f"(expected for Hugging Face module {hf_prefix + hf})."
                )
            start = 0
            for path in paths:
                spec = EinsumSpec.from_layer(layers[path])
                rows = None
                if len(paths) > 1:
                    width = int(np.prod(spec.dims(spec.kernel_out)))
                    rows = (start, start + width)
                    start += width
                found.append(HFModule(hf_prefix + hf, path, spec, rows))
    return found


def prompt_row_scale(backbone):
    """What a PEFT prompt row is divided by to become a tf_adapters one."""
    if table_of(backbone).scaled_embedding:
        return float(np.sqrt(backbone.hidden_dim))
    return 1.0


def to_keras_in(a, spec):
    """PEFT's `lora_A` `(r, in)` → our `A`: `contracted dims + (r,)`."""
    return np.ascontiguousarray(a.T).reshape(
        spec.dims(spec.contracted) + (a.shape[0],)
    )


def to_keras_out(b, spec):
    """PEFT's `lora_B` rows `(out, r)` → our `B`: `(r,) + output dims`."""
    return np.ascontiguousarray(b.T).reshape(
        (b.shape[1],) + spec.dims(spec.kernel_out)
    )


def from_keras_in(a):
    """Our `A` → PEFT's `lora_A` `(r, in)`."""
    return np.ascontiguousarray(a.reshape(-1, a.shape[-1]).T)


def from_keras_out(b):
    """Our `B` → PEFT's `lora_B` `(out, r)`."""
    return np.ascontiguousarray(b.reshape(b.shape[0], -1).T)
