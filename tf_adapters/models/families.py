"""Default adapter targets for each keras-hub decoder family.

Targets are layer names matched as suffixes of layer paths such as
`transformer_layer_0/self_attention/query`. A family is found by walking the
backbone's class hierarchy, so subclasses (e.g. `Llama3Backbone`) inherit
their parent's entry.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Family:
    lora: tuple
    attention_output: str
    ffn_input: str
    ffn_output: str
    ia3: tuple

    def bottleneck_targets(self, variant):
        if variant == "houlsby":
            return [self.attention_output, self.ffn_output]
        return [self.ffn_output]


_MHA_DECODER = Family(
    lora=("query", "value"),
    attention_output="attention_output",
    ffn_input="feedforward_intermediate_dense",
    ffn_output="feedforward_output_dense",
    ia3=("key", "value", "feedforward_output_dense"),
)
_NEOX = dataclasses.replace(
    _MHA_DECODER,
    lora=("query_key_value",),
    ia3=("query_key_value", "feedforward_output_dense"),
)
_GEMMA = Family(
    lora=("query", "value"),
    attention_output="attention_output",
    ffn_input="ffw_gating",
    ffn_output="ffw_linear",
    ia3=("key", "value", "ffw_linear"),
)

FAMILIES = {
    "GPT2Backbone": _MHA_DECODER,
    "OPTBackbone": _MHA_DECODER,
    "GPTNeoXBackbone": _NEOX,
    "LlamaBackbone": _MHA_DECODER,
    "Llama3Backbone": _MHA_DECODER,
    "MistralBackbone": _MHA_DECODER,
    "Qwen2Backbone": _MHA_DECODER,
    "QwenBackbone": _MHA_DECODER,
    "Qwen3Backbone": _MHA_DECODER,
    "Phi3Backbone": _MHA_DECODER,
    "GemmaBackbone": _GEMMA,
}


def family_of(backbone):
    """The `Family` of a backbone, or `None` if it has no defaults."""
    for cls in type(backbone).__mro__:
        if cls.__name__ in FAMILIES:
            return FAMILIES[cls.__name__]
    return None


def family_default(backbone, pick):
    """`pick(family)` for the backbone's family, or `None` without one."""
    family = family_of(backbone)
    return None if family is None else pick(family)
