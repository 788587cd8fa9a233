import keras
from keras import ops

from tf_adapters.tasks.backbone_model import BackboneModel


def last_token_states(backbone, inputs, training=None):
    """The backbone's hidden state at each row's last non-padding token."""
    hidden = backbone(inputs, training=training)  # (B, T, D)
    mask = ops.cast(inputs["padding_mask"], "int32")
    last = ops.sum(mask, axis=1) - 1  # (B,)
    pick = ops.one_hot(last, ops.shape(hidden)[1], dtype=hidden.dtype)
    return ops.einsum("btd,bt->bd", hidden, pick)  # (B, D)


@keras.saving.register_keras_serializable(package="tf_adapters")
class LastTokenClassifier(BackboneModel):
    """A linear head on the hidden state of the last non-padding token.

    The usual way to classify with a decoder (as keras-hub's and Hugging
    Face's sequence-classification heads for decoders do). The head is new
    and trains with the adapter (or alone: a linear probe).

    Called on `{"token_ids", "padding_mask"}` (right-padded), it returns
    float32 logits of shape `(batch, num_classes)`.

    Args:
        backbone: `keras_hub.models.Backbone`. The backbone, adapted or not.
        num_classes: int. Number of classes (the head's width).
        **kwargs: `keras.Model` arguments such as `name`.

    Example:
    >>> import numpy as np, keras, keras_hub, tf_adapters as tfa
    >>> backbone = keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=32)
    >>> backbone = tfa.add_adapter(backbone, tfa.LoraConfig(rank=2))
    >>> model = tfa.LastTokenClassifier(backbone, num_classes=3)
    >>> x = {"token_ids": np.ones((2, 6), "int32"),
    ...      "padding_mask": np.array([[1] * 6, [1] * 3 + [0] * 3])}
    >>> tuple(model(x).shape)
    (2, 3)
    >>> model.compile(
    ...     optimizer="adam",
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> history = model.fit(x, np.array([0, 2]), verbose=0)
    """

    def __init__(self, backbone, num_classes, **kwargs):
        super().__init__(backbone, **kwargs)
        self.num_classes = int(num_classes)
        self.head = keras.layers.Dense(
            self.num_classes, dtype="float32", name="classifier_head"
        )

    def call(self, inputs, training=None):
        final = last_token_states(self.backbone, inputs, training)
        return self.head(ops.cast(final, "float32"))

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
