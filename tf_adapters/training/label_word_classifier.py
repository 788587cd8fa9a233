import keras
from keras import ops

from tf_adapters.training.backbone_model import BackboneModel
from tf_adapters.training.last_token_classifier import last_token_states


@keras.saving.register_keras_serializable(package="tf_adapters")
class LabelWordClassifier(BackboneModel):
    """Classifies a prompt by the LM's scores for each label's word.

    The prompt ends where the answer would start; the logits are the language
    model's next-token logits there, restricted to the first token of each
    label word. Only that one position goes through the vocabulary
    projection. With no training this is zero-shot classification; with an
    adapter (or full fine-tuning) it is fine-tuning with a 2-way (N-way)
    cross-entropy.

    Args:
        backbone: `keras_hub.models.Backbone` with a `token_embedding`.
        label_token_ids: list of int. One token id per label.
        **kwargs: `keras.Model` arguments.

    Example:
    >>> import numpy as np, keras_hub
    >>> from tf_adapters.training.label_word_classifier import (
    ...     LabelWordClassifier)
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> model = LabelWordClassifier(backbone, [5, 9])
    >>> x = {"token_ids": np.ones((2, 6), "int32"),
    ...      "padding_mask": np.array([[1] * 6, [1] * 3 + [0] * 3])}
    >>> tuple(model(x).shape)
    (2, 2)
    """

    def __init__(self, backbone, label_token_ids, **kwargs):
        super().__init__(backbone, **kwargs)
        self.label_token_ids = [int(i) for i in label_token_ids]

    def call(self, inputs, training=None):
        final = last_token_states(self.backbone, inputs, training)
        final = final[:, None, :]  # (B, 1, D): one position to project
        logits = self.backbone.token_embedding(final, reverse=True)[:, 0]
        return ops.cast(
            ops.take(logits, self.label_token_ids, axis=-1), "float32"
        )

    def get_config(self):
        config = super().get_config()
        config["label_token_ids"] = self.label_token_ids
        return config
