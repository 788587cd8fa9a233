import keras
from keras import ops

from tf_adapters.compat.class_swap import swap_in
from tf_adapters.compat.class_swap import swap_out
from tf_adapters.compat.tracking import remove_sublayer
from tf_adapters.compat.tracking import set_sublayer

# The attribute of the token embedding that holds the attached table.
PROMPT_ATTR = "tfa_prompt"


@keras.saving.register_keras_serializable(package="tf_adapters")
class PromptEmbedding(keras.layers.Layer):
    """A table of `num_virtual_tokens` learned embeddings.

    Args:
        num_virtual_tokens: int. Rows in the table.
        hidden_dim: int. Embedding width.
        adapter_name: str. The adapter this table belongs to.
        embeddings_initializer: initializer. Defaults to N(0, 0.02).
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> from tf_adapters.methods.prompt_tuning import PromptEmbedding
    >>> table = PromptEmbedding(4, 8, "task")
    >>> tuple(table(np.array([[0, 3]])).shape)
    (1, 2, 8)
    """

    def __init__(
        self,
        num_virtual_tokens,
        hidden_dim,
        adapter_name,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_virtual_tokens = num_virtual_tokens
        self.hidden_dim = hidden_dim
        self.adapter_name = adapter_name
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
            or keras.initializers.RandomNormal(stddev=0.02)
        )
        self.adapter_enabled = True

    def build(self, input_shape=None):
        self.prompt_embeddings = self.add_weight(
            name="prompt_embeddings",
            shape=(self.num_virtual_tokens, self.hidden_dim),
            initializer=self.embeddings_initializer,
        )
        self.built = True

    def call(self, indices):
        return ops.take(self.prompt_embeddings, indices, axis=0)

    def adapter_variables(self):
        return {"prompt_embeddings": self.prompt_embeddings}

    def attach_to(self, embedding):
        """Makes `embedding` (the model's token embedding) look ids at or
        past its vocabulary size up in this table."""
        swap_in(embedding, PromptTuningEmbeddingMixin)
        set_sublayer(embedding, PROMPT_ATTR, self)

    def detach_from(self, embedding):
        """Undoes `attach_to`."""
        remove_sublayer(embedding, PROMPT_ATTR)
        swap_out(embedding, PromptTuningEmbeddingMixin)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_virtual_tokens": self.num_virtual_tokens,
                "hidden_dim": self.hidden_dim,
                "adapter_name": self.adapter_name,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config


class PromptTuningEmbeddingMixin:
    """Mixed into a model's token embedding: ids at or past the vocabulary
    size look up the attached `PromptEmbedding` (`PROMPT_ATTR`)."""

    class_prefix = "PromptTuning"

    def call(self, inputs, *args, reverse=False, **kwargs):
        prompt = getattr(self, PROMPT_ATTR, None)
        if reverse or prompt is None or not prompt.adapter_enabled:
            if reverse:
                kwargs["reverse"] = reverse
            return super().call(inputs, *args, **kwargs)
        ids = ops.convert_to_tensor(inputs, "int32")
        is_virtual = ops.greater_equal(ids, self.input_dim)
        tokens = super().call(ops.where(is_virtual, 0, ids), *args, **kwargs)
        virtual = prompt(
            ops.clip(ids - self.input_dim, 0, prompt.num_virtual_tokens - 1)
        )
        return ops.where(
            ops.expand_dims(is_virtual, -1),
            ops.cast(virtual, tokens.dtype),
            tokens,
        )
