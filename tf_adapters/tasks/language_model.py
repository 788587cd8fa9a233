import keras
from keras import ops

from tf_adapters.tasks.backbone_model import BackboneModel


@keras.saving.register_keras_serializable(package="tf_adapters")
class LanguageModel(BackboneModel):
    """Next-token logits of a backbone, for training on token ids.

    keras-hub's `CausalLM.fit` runs its preprocessor on the data; this model
    takes token ids that `tf.data` already prepared (as `tf.distribute` and
    loss masks need) and returns float32 logits for every position.

    Called on `{"token_ids", "padding_mask"}`, it returns logits of shape
    `(batch, sequence, vocabulary)`; train it on the next tokens as labels.

    Args:
        backbone: `keras_hub.models.Backbone`. A backbone with a
            `token_embedding` (tied or not), adapted or not.
        **kwargs: `keras.Model` arguments such as `name`.

    Example:
    >>> import numpy as np, keras, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> model = tfa.LanguageModel(backbone)
    >>> tokens = np.arange(14, dtype="int32").reshape(2, 7)
    >>> x = {"token_ids": tokens[:, :-1],
    ...      "padding_mask": np.ones((2, 6), "int32")}
    >>> tuple(model(x).shape)
    (2, 6, 64)
    >>> model.compile(
    ...     optimizer="adam",
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> history = model.fit(x, tokens[:, 1:], verbose=0)
    """

    def call(self, inputs, training=None):
        hidden = self.backbone(inputs, training=training)
        logits = self.backbone.token_embedding(hidden, reverse=True)
        return ops.cast(logits, "float32")
