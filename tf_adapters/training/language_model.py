import keras
from keras import ops

from tf_adapters.training.backbone_model import BackboneModel


@keras.saving.register_keras_serializable(package="tf_adapters")
class LanguageModel(BackboneModel):
    """Next-token logits of a backbone, for training on token ids.

    keras-hub's `CausalLM.fit` runs its preprocessor on the data; this model
    takes token ids that `tf.data` already prepared (as `tf.distribute` and
    loss masks need) and returns float32 logits for every position.

    Args:
        backbone: `keras_hub.models.Backbone` with a `token_embedding`.
        **kwargs: `keras.Model` arguments.

    Example:
    >>> import numpy as np, keras_hub
    >>> from tf_adapters.training.language_model import LanguageModel
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> x = {"token_ids": np.ones((2, 6), "int32"),
    ...      "padding_mask": np.ones((2, 6), "int32")}
    >>> tuple(LanguageModel(backbone)(x).shape)
    (2, 6, 64)
    """

    def call(self, inputs, training=None):
        hidden = self.backbone(inputs, training=training)
        logits = self.backbone.token_embedding(hidden, reverse=True)
        return ops.cast(logits, "float32")
