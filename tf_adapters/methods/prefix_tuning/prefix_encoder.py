import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_adapters")
class PrefixEncoder(keras.layers.Layer):
    """PEFT's `PrefixEncoder` with `prefix_projection=True`: the prefix
    table of every layer computed from a small network.

    `embedding` `(num_virtual_tokens, hidden_dim)` → Dense(`projection`) →
    tanh → Dense(`output_dim`). Column `c` of the output belongs to the
    layer whose block `columns(start, stop)` covers it (PEFT's layout:
    per layer, the keys then the values, each `(kv_heads, head_dim)`).

    Args:
        num_virtual_tokens: int. Rows of the table.
        hidden_dim: int. Width of the embedding.
        projection: int. Width of the hidden layer.
        output_dim: int. Columns of the table: `num_layers · 2 · kv_heads ·
            head_dim`.
        embeddings_initializer: initializer. Defaults to N(0, 1).
        seed: int. Seed of the Dense layers' Glorot initialization.
            Defaults to `None` (unseeded).
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> from tf_adapters.methods.prefix_tuning import PrefixEncoder
    >>> encoder = PrefixEncoder(4, 8, 16, 24)
    >>> encoder.build()
    >>> tuple(encoder.table().shape), tuple(encoder.columns(8, 12).shape)
    ((4, 24), (4, 4))
    """

    def __init__(
        self,
        num_virtual_tokens,
        hidden_dim,
        projection,
        output_dim,
        embeddings_initializer=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_virtual_tokens = num_virtual_tokens
        self.hidden_dim = hidden_dim
        self.projection = projection
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
            or keras.initializers.RandomNormal(stddev=1.0)
        )
        self.seed = seed

    def build(self, input_shape=None):
        self.embedding = self.add_weight(
            name="embedding",
            shape=(self.num_virtual_tokens, self.hidden_dim),
            initializer=self.embeddings_initializer,
        )
        self.hidden = keras.layers.Dense(
            self.projection,
            activation="tanh",
            kernel_initializer=self._glorot(0),
            dtype=self.dtype_policy,
            name="hidden",
        )
        self.hidden.build((None, self.hidden_dim))
        self.output_projection = keras.layers.Dense(
            self.output_dim,
            kernel_initializer=self._glorot(1),
            dtype=self.dtype_policy,
            name="output_projection",
        )
        self.output_projection.build((None, self.projection))
        self.built = True

    def _glorot(self, offset):
        seed = None if self.seed is None else self.seed + offset
        return keras.initializers.GlorotUniform(seed=seed)

    def columns(self, start, stop):
        """Columns `start ... stop - 1` of the table, `(num_virtual_tokens,
        stop - start)`: one layer's prefix costs one slice of the output
        projection, not all of it."""
        dtype = self.compute_dtype
        hidden = self.hidden(ops.cast(self.embedding, dtype))
        kernel = ops.cast(self.output_projection.kernel[:, start:stop], dtype)
        bias = ops.cast(self.output_projection.bias[start:stop], dtype)
        return ops.matmul(hidden, kernel) + bias

    def table(self):
        """The whole table, `(num_virtual_tokens, output_dim)`."""
        return self.columns(0, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_virtual_tokens": self.num_virtual_tokens,
                "hidden_dim": self.hidden_dim,
                "projection": self.projection,
                "output_dim": self.output_dim,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "seed": self.seed,
            }
        )
        return config
