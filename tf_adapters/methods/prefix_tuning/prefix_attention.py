import functools

import keras
import tensorflow as tf
from keras import ops

from tf_adapters.compat.attention import editing_attention
from tf_adapters.compat.attention import hook_attention
from tf_adapters.compat.attention import serialize_unhooked
from tf_adapters.compat.attention import unhook_attention
from tf_adapters.compat.layers import set_untracked
from tf_adapters.core import routing
from tf_adapters.core.adapter_layer import AdapterLayer
from tf_adapters.methods.prefix_tuning.prefix_encoder import PrefixEncoder

# Marks a call argument the caller did not pass (`None` is a value here).
_NOT_GIVEN = object()


@keras.saving.register_keras_serializable(package="tf_adapters")
class PrefixAttention(AdapterLayer):
    """A keras-hub attention layer that also attends to learned keys and
    values (prefix tuning).

    The prefix, `(num_virtual_tokens, kv_heads, head_dim)` keys and values,
    is prepended to the layer's keys and values after RoPE and the KV cache
    (`tf_adapters.compat.attention`), with mask columns every query sees, so
    the cache and the positions of real tokens are those of the base model.
    It is either this layer's own table or, with `projection_dim`, its slice of
    a `PrefixEncoder` that all layers share (the first layer owns it).

    When adapters are routed per example (multi-adapter serving), examples
    whose gate is 0 do not see the prefix and those whose gate is 1 do; any
    other weight is refused at run time: a prefix cannot be scaled.

    Args:
        base_layer: a keras-hub attention layer (`SUPPORTED` in
            `tf_adapters.compat.attention`).
        adapter_name: str. The adapter this layer belongs to.
        num_virtual_tokens: int. Prefix length.
        key_shape: tuple of int. `(kv_heads, head_dim)` of the keys.
        value_shape: tuple of int. `(kv_heads, head_dim)` of the values.
        layer_index: int. Position among the decoder's attention layers.
            Defaults to `0`.
        num_layers: int. Number of attention layers. Defaults to `1`.
        hidden_dim: int. Width of the encoder's embedding (the model's
            hidden size); needed with `projection_dim`. Defaults to `None`.
        projection_dim: int or `None`. Width of the encoder; `None`: a
            table. Defaults to `None`.
        init_std: float. Normal initialization of the table or the encoder's
            embedding. Defaults to `1.0`.
        seed: int. Seed of that initialization. Defaults to `0`.
        shared: `PrefixAttention` whose encoder this layer uses instead of
            owning one. Defaults to `None`.
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np, keras_hub
    >>> from tf_adapters.methods.prefix_tuning import PrefixAttention
    >>> attention = keras_hub.layers.CachedMultiHeadAttention(2, 4)
    >>> layer = PrefixAttention(attention, "task", 5, (2, 4), (2, 4))
    >>> layer.build()
    >>> x = np.ones((1, 3, 8), "float32")
    >>> y = layer(x, x)
    >>> tuple(y.shape), tuple(layer.prefix()[0].shape)
    ((1, 3, 8), (5, 2, 4))
    >>> layer.adapter_enabled = False  # the base attention alone
    >>> bool(np.allclose(y, layer(x, x)))
    False
    """

    def __init__(
        self,
        base_layer,
        adapter_name,
        num_virtual_tokens,
        key_shape,
        value_shape,
        layer_index=0,
        num_layers=1,
        hidden_dim=None,
        projection_dim=None,
        init_std=1.0,
        seed=0,
        shared=None,
        **kwargs,
    ):
        super().__init__(base_layer, adapter_name, **kwargs)
        self.num_virtual_tokens = num_virtual_tokens
        self.key_shape = tuple(key_shape)
        self.value_shape = tuple(value_shape)
        self.layer_index = layer_index
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.projection_dim = projection_dim
        self.init_std = init_std
        self.seed = seed
        # Not tracked as a sublayer: the owner lives in its own slot.
        set_untracked(self, "shared", shared)
        set_untracked(self, "hooked", False)

    @property
    def key_size(self):
        return self.key_shape[0] * self.key_shape[1]

    @property
    def value_size(self):
        return self.value_shape[0] * self.value_shape[1]

    def build(self, input_shape=None):
        if self.projection_dim is None:
            self.prefix_key = self._new_table("prefix_key", self.key_shape, 0)
            self.prefix_value = self._new_table(
                "prefix_value", self.value_shape, 1
            )
        elif self.shared is None:
            self.encoder = PrefixEncoder(
                self.num_virtual_tokens,
                self.hidden_dim,
                self.projection_dim,
                self.num_layers * (self.key_size + self.value_size),
                embeddings_initializer=self._seeded_normal(0),
                seed=self.seed + 1,
                dtype=self.dtype_policy,
                name="prefix_encoder",
            )
            self.encoder.build()
        if not self.base_layer.built:
            # A base given unbuilt (`from_config`, or by hand) is this
            # wrapper's own: no injection plan will attach it.
            self.attach()
        self.built = True

    def _seeded_normal(self, offset):
        # A distinct seed per variable: one seeded initializer draws the same
        # numbers for every variable of the same shape.
        seed = self.seed + 2 * self.layer_index + offset
        return keras.initializers.RandomNormal(stddev=self.init_std, seed=seed)

    def _new_table(self, name, shape, offset):
        return self.add_weight(
            name=name,
            shape=(self.num_virtual_tokens, *shape),
            initializer=self._seeded_normal(offset),
        )

    def prefix(self):
        """This layer's `(keys, values)`, each `(num_virtual_tokens,
        kv_heads, head_dim)`, in the compute dtype."""
        dtype = self.compute_dtype
        if self.projection_dim is None:
            return (
                ops.cast(self.prefix_key, dtype),
                ops.cast(self.prefix_value, dtype),
            )
        owner = self if self.shared is None else self.shared
        encoder = owner.encoder
        start = self.layer_index * (self.key_size + self.value_size)
        block = encoder.columns(start, start + self.key_size + self.value_size)
        p = self.num_virtual_tokens
        return (
            ops.reshape(block[:, : self.key_size], (p, *self.key_shape)),
            ops.reshape(block[:, self.key_size :], (p, *self.value_shape)),
        )

    def attach(self):
        super().attach()
        if not self.hooked:
            hook_attention(self.projection)  # the attention layer
            set_untracked(self, "hooked", True)

    def detach(self):
        if self.hooked:
            unhook_attention(self.projection)
            set_untracked(self, "hooked", False)
        super().detach()

    def call(
        self,
        *args,
        cache_update_index=_NOT_GIVEN,
        training=None,
        **kwargs,
    ):
        if cache_update_index is not _NOT_GIVEN:
            kwargs["cache_update_index"] = cache_update_index
        gate = None
        if routing.routing_active():
            gate = routing.gate(self.adapter_name)
            enabled = gate is not None
        else:
            enabled = self.adapter_enabled
        if not enabled:
            return self.base_layer(*args, training=training, **kwargs)
        keys, values = self.prefix()
        edit = functools.partial(
            prepend_prefix,
            prefix_key=keys,
            prefix_value=values,
            visible=None if gate is None else _visible(gate, self.adapter_name),
        )
        with editing_attention(edit):
            return self.base_layer(*args, training=training, **kwargs)

    @classmethod
    def from_config(cls, config):
        layer = super().from_config(config)
        layer.attach()  # it holds its own base, which no plan attaches
        return layer

    def compute_output_spec(self, *args, **kwargs):
        # Symbolic calls run `call` too, so that they build the base layer
        # (the base's own spec would leave it unbuilt, and unsaved).
        return self.call(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "base_layer": serialize_unhooked(self.base_layer),
                "num_virtual_tokens": self.num_virtual_tokens,
                "key_shape": list(self.key_shape),
                "value_shape": list(self.value_shape),
                "layer_index": self.layer_index,
                "num_layers": self.num_layers,
                "hidden_dim": self.hidden_dim,
                "projection_dim": self.projection_dim,
                "init_std": self.init_std,
                "seed": self.seed,
            }
        )
        return config


def _visible(gate, adapter_name):
    """Which examples see the prefix: gate 1 yes, 0 no, else an error."""
    check = tf.debugging.assert_equal(
        tf.reduce_all((gate == 0.0) | (gate == 1.0)),
        True,
        message=f"prefix-tuning adapter {adapter_name!r} takes a weight of 0 "
        "or 1 per example (its prefix is seen or not; it cannot be scaled)",
    )
    with tf.control_dependencies([check]):
        return tf.identity(gate) > 0.5


def prepend_prefix(
    query, key, value, attention_mask, prefix_key, prefix_value, visible=None
):
    """`(key, value, mask)` with the prefix in front.

    Args:
        query: `(batch, target, heads, head_dim)`.
        key, value: `(batch, source, heads, head_dim)`, `heads` a multiple
            of the prefix's (grouped-query attention repeats the key/value
            heads before attending, and so are the prefix's).
        attention_mask: `(batch, target, source)` or `None` (all visible).
        prefix_key, prefix_value: `(num_virtual_tokens, kv_heads, head_dim)`.
        visible: bool `(batch,)`: which examples see the prefix. Defaults to
            `None` (all).
    """
    batch = ops.shape(key)[0]
    key = ops.concatenate([_expand(prefix_key, key, batch), key], axis=1)
    value = ops.concatenate([_expand(prefix_value, value, batch), value], 1)
    if attention_mask is None and visible is None:
        return key, value, None
    target = ops.shape(query)[1]
    p = prefix_key.shape[0]
    if attention_mask is None:
        source = ops.shape(key)[1] - p
        attention_mask = ops.ones((batch, target, source), "bool")
    if visible is None:
        columns = ops.ones((batch, target, p), attention_mask.dtype)
    else:
        columns = ops.broadcast_to(
            ops.cast(visible[:, None, None], attention_mask.dtype),
            (batch, target, p),
        )
    return key, value, ops.concatenate([columns, attention_mask], axis=2)


def _expand(prefix, like, batch):
    """`prefix` `(P, kv_heads, D)` as `(batch, P, heads, D)` in `like`'s
    dtype, its heads repeated as grouped-query attention repeats them."""
    heads, kv_heads = like.shape[2], prefix.shape[1]
    if heads % kv_heads:
        raise ValueError(
            f"The attention attends with {heads} key heads, not a multiple "
            f"of the prefix's {kv_heads}; prefix tuning cannot serve it."
        )
    prefix = ops.cast(prefix, like.dtype)
    if heads != kv_heads:
        prefix = ops.repeat(prefix, heads // kv_heads, axis=1)
    return ops.broadcast_to(prefix[None], (batch, *prefix.shape))
