import keras
from keras import ops

from tf_adapters.data.encoding import tokenize
from tf_adapters.tasks.backbone_model import BackboneModel
from tf_adapters.tasks.last_token_classifier import last_token_states


def label_token_ids(tokenizer, labels):
    """The first token of each label word; they must differ."""
    ids = [row[0] if row else None for row in tokenize(tokenizer, list(labels))]
    if None in ids or len(set(ids)) != len(ids):
        raise ValueError(
            f"Labels {list(labels)} are empty or start with the same token; "
            "choose label words that the tokenizer starts differently, or "
            "use a LastTokenClassifier (`--head linear`)."
        )
    return ids


@keras.saving.register_keras_serializable(package="tf_adapters")
class LabelWordClassifier(BackboneModel):
    """Classifies a prompt by the LM's scores for each label's word.

    The prompt ends where the answer would start; the logits are the language
    model's next-token logits there, restricted to the first token of each
    label word. Only that one position goes through the vocabulary
    projection. With no training this is zero-shot classification; with an
    adapter (or full fine-tuning) it is fine-tuning with a 2-way (N-way)
    cross-entropy.

    Called on `{"token_ids", "padding_mask"}` (right-padded), it returns
    float32 logits of shape `(batch, len(label_token_ids))`, plus
    `label_bias`: a non-trainable weight, zeros until `finetune`
    calibrates it (`tf_adapters.evaluation.calibration`), that shifts each
    label's logit (saved and exported with the model).

    Args:
        backbone: `keras_hub.models.Backbone`. A backbone with a
            `token_embedding` (tied or not), adapted or not.
        label_token_ids: list of int. The first token id of each label's
            word, in label order.
        **kwargs: `keras.Model` arguments such as `name`.

    Example:
    >>> import numpy as np, keras, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> model = tfa.LabelWordClassifier(backbone, label_token_ids=[5, 9])
    >>> x = {"token_ids": np.ones((2, 6), "int32"),
    ...      "padding_mask": np.array([[1] * 6, [1] * 3 + [0] * 3])}
    >>> tuple(model(x).shape)
    (2, 2)
    >>> model.compile(
    ...     optimizer="adam",
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> history = model.fit(x, np.array([0, 1]), verbose=0)
    """

    def __init__(self, backbone, label_token_ids, **kwargs):
        super().__init__(backbone, **kwargs)
        self.label_token_ids = [int(i) for i in label_token_ids]
        self.label_bias = self.add_weight(
            shape=(len(self.label_token_ids),),
            initializer="zeros",
            trainable=False,
            dtype="float32",
            name="label_bias",
        )

    @classmethod
    def from_causal_lm(cls, causal_lm, labels, **kwargs):
        """A classifier on `causal_lm`'s backbone that scores `labels`.

        Args:
            causal_lm: `keras_hub.models.CausalLM` with a preprocessor, e.g.
                from `tfa.load_base()`, adapted or not.
            labels: list of str. One word per class, in label order, as the
                model would write it after the prompt (e.g. `["negative",
                "positive"]`); their first tokens must differ.
            **kwargs: `keras.Model` arguments such as `name`.

        Returns:
            `LabelWordClassifier`: it shares `causal_lm`'s backbone (and so
            its weights and adapters).

        Example:
        >>> import keras_hub, tf_adapters as tfa
        >>> vocab = {"<|endoftext|>": 0, "a": 1, "t": 2, "Ġ": 3, "Ġa": 4,
        ...          "Ġt": 5, "at": 6}
        >>> tokenizer = keras_hub.models.GPT2Tokenizer(
        ...     vocabulary=vocab, merges=["Ġ a", "Ġ t", "a t"])
        >>> lm = keras_hub.models.GPT2CausalLM(
        ...     keras_hub.models.GPT2Backbone(
        ...         vocabulary_size=7, num_layers=1, num_heads=2,
        ...         hidden_dim=8, intermediate_dim=16, max_sequence_length=32),
        ...     preprocessor=keras_hub.models.GPT2CausalLMPreprocessor(
        ...         tokenizer, sequence_length=8))
        >>> model = tfa.LabelWordClassifier.from_causal_lm(lm, ["a", "t"])
        >>> model.label_token_ids
        [1, 2]
        """
        preprocessor = getattr(causal_lm, "preprocessor", None)
        if preprocessor is None or not hasattr(causal_lm, "backbone"):
            raise TypeError(
                "`causal_lm` must be a keras-hub CausalLM with a "
                "preprocessor (as `tfa.load_base()` returns). Received: "
                f"{type(causal_lm).__name__}."
            )
        ids = label_token_ids(preprocessor.tokenizer, labels)
        return cls(causal_lm.backbone, ids, **kwargs)

    def call(self, inputs, training=None):
        final = last_token_states(self.backbone, inputs, training)
        final = final[:, None, :]  # (B, 1, D): one position to project
        logits = self.backbone.token_embedding(final, reverse=True)[:, 0]
        logits = ops.take(logits, self.label_token_ids, axis=-1)
        return ops.cast(logits, "float32") + self.label_bias

    def load_own_variables(self, store):
        # `.keras` files from before `label_bias` hold no variable of the
        # classifier's own: the bias stays zero, as it was then.
        if len(store.keys()) == 0:
            return
        super().load_own_variables(store)

    def get_config(self):
        config = super().get_config()
        config["label_token_ids"] = self.label_token_ids
        return config
