"""keras-hub Llama 3 classes that survive `save_to_preset` / `from_preset`.

keras-hub 0.32's `Llama3Backbone.get_config()` drops `tie_word_embeddings`
(a tied preset reloads untied and fails), `Llama3Tokenizer` does not save its
special tokens, and `generate_preprocess` prepends the start token even when
`add_start_token=False`. These thin subclasses fix exactly that; everything
else is keras-hub's own Llama 3.
"""

import keras
import keras_hub

_register = keras.saving.register_keras_serializable(package="tf_adapters")


@_register
class GGUFLlamaBackbone(keras_hub.models.Llama3Backbone):
    """`Llama3Backbone` whose config keeps `tie_word_embeddings`."""

    def get_config(self):
        config = super().get_config()
        config["tie_word_embeddings"] = self.tie_word_embeddings
        return config


@_register
class GGUFLlamaTokenizer(keras_hub.models.Llama3Tokenizer):
    """`Llama3Tokenizer` whose config keeps its special tokens.

    Args:
        vocabulary: dict or str. Token → id (or a JSON file of it).
        merges: list or str. BPE merge rules (or a file of them).
        bos_token: str. The start token.
        eos_token: str. The end token.
        misc_special_tokens: list of str. Other tokens never split.
        **kwargs: `BytePairTokenizer` arguments.
    """

    backbone_cls = GGUFLlamaBackbone

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        misc_special_tokens=(),
        **kwargs,
    ):
        self._special_config = {
            "bos_token": bos_token,
            "eos_token": eos_token,
            "misc_special_tokens": sorted(misc_special_tokens),
        }
        # keras-hub's in-graph pre-tokenizer swaps the i-th unsplittable token
        # for "Ĵ" + letters(i) and swaps back in order, so with more than ten
        # the alternates are prefixes of each other ("ĴB" of "ĴBA") and
        # tokens after the tenth come out mangled inside a tf.function. Keep
        # ten: the start and end tokens first.
        kwargs.setdefault(
            "unsplittable_tokens",
            [bos_token, eos_token, *sorted(misc_special_tokens)][:10],
        )
        super().__init__(
            vocabulary=vocabulary,
            merges=merges,
            bos_token=bos_token,
            eos_token=eos_token,
            misc_special_tokens=set(misc_special_tokens),
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.update(self._special_config)
        return config


@_register
class GGUFLlamaCausalLMPreprocessor(
    keras_hub.models.Llama3CausalLMPreprocessor
):
    """Honours `add_start_token=False` in `generate_preprocess` too."""

    backbone_cls = GGUFLlamaBackbone
    tokenizer_cls = GGUFLlamaTokenizer

    def build(self, input_shape):
        super().build(input_shape)
        if not self.add_start_token:
            self.packer.start_value = None


@_register
class GGUFLlamaCausalLM(keras_hub.models.Llama3CausalLM):
    """keras-hub's Llama 3 causal LM, for models converted from GGUF."""

    backbone_cls = GGUFLlamaBackbone
    preprocessor_cls = GGUFLlamaCausalLMPreprocessor
