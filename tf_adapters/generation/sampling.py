"""Sampling whose options are tensors, for serving signatures.

keras-hub's samplers fix their options (`k`, `p`, `temperature`) in Python
when they are built, so a SavedModel could only serve the values chosen at
export time. `TensorSampler` takes them as tensors, so a TF Serving request
chooses them, and draws with stateless random ops seeded by the request's
`seed` and the position, so the same request always gives the same text
(also when TF Serving runs requests concurrently: there is no random state).
"""

import keras_hub
import tensorflow as tf


def next_token(logits, temperature, top_k, top_p, seed):
    """Samples one token per row of `logits` (`(batch, vocab)`).

    `temperature == 0` is greedy decoding (argmax). Otherwise the logits are
    divided by `temperature`, cut to the `top_k` largest (`0`: no cut), then
    to the smallest set of those whose probabilities sum to at least
    `top_p` (`1.0`: no cut), and one token is drawn from what remains. Ties
    at a cut keep every tied token.

    Example:
    >>> import tensorflow as tf
    >>> logits = tf.constant([[0.0, 3.0, 1.0]])
    >>> int(next_token(logits, 0.0, 0, 1.0, tf.constant([1, 2]))[0])
    1
    >>> int(next_token(logits, 1.0, 1, 1.0, tf.constant([1, 2]))[0])
    1
    """
    logits = tf.cast(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)
    vocab = tf.shape(logits)[-1]
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    scaled = logits / tf.maximum(temperature, 1e-6)
    ranked = tf.sort(scaled, axis=-1, direction="DESCENDING")
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    ranked = tf.where(tf.range(vocab) < k, ranked, -float("inf"))
    # The top-p set: tokens whose preceding cumulative probability < top_p
    # (the first token always qualifies).
    before = tf.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)
    kept = tf.reduce_sum(
        tf.cast(
            tf.logical_and(before < top_p, ranked > -float("inf")), "int32"
        ),
        axis=-1,
    )
    kept = tf.maximum(kept, 1)
    threshold = tf.gather(ranked, kept - 1, axis=1, batch_dims=1)[:, None]
    filtered = tf.where(scaled >= threshold, scaled, -float("inf"))
    drawn = tf.random.stateless_categorical(
        filtered, 1, seed=seed, dtype=tf.int32
    )[:, 0]
    return tf.where(temperature > 0, drawn, greedy)


def check_options(temperature, top_k, top_p):
    """Graph assertions on the sampling options (clear errors at serving)."""
    return [
        tf.debugging.assert_non_negative(
            temperature, message="temperature must be >= 0 (0: greedy)"
        ),
        tf.debugging.assert_non_negative(
            top_k, message="top_k must be >= 0 (0: no top-k cut)"
        ),
        tf.debugging.assert_greater(
            top_p, 0.0, message="top_p must be in (0, 1] (1: no top-p cut)"
        ),
        tf.debugging.assert_less_equal(
            top_p, 1.0, message="top_p must be in (0, 1] (1: no top-p cut)"
        ),
    ]


class TensorSampler(keras_hub.samplers.Sampler):
    """A keras-hub sampler whose options are (possibly symbolic) tensors.

    Drop-in for `causal_lm.sampler`; the random draw at position `i` uses
    the stateless seed `(seed, i)`.

    Args:
        temperature: float scalar. `0` is greedy decoding.
        top_k: int scalar. Keep the `top_k` likeliest tokens; `0` keeps all.
        top_p: float scalar in (0, 1]. Nucleus cut; `1` keeps all.
        seed: int scalar. Seed of the draws.

    Example:
    >>> import keras_hub, numpy as np
    >>> from tf_adapters.generation.sampling import TensorSampler
    >>> lm = keras_hub.models.GPT2CausalLM(keras_hub.models.GPT2Backbone(
    ...     vocabulary_size=16, num_layers=1, num_heads=1, hidden_dim=4,
    ...     intermediate_dim=8, max_sequence_length=8))
    >>> lm.sampler = TensorSampler(temperature=0.8, top_k=4, seed=7)
    >>> x = {"token_ids": np.array([[1, 2, 0, 0]]),
    ...      "padding_mask": np.array([[1, 1, 0, 0]])}
    >>> a = lm.generate_step(x)["token_ids"]
    >>> b = lm.generate_step(x)["token_ids"]
    >>> bool((a == b).numpy().all())
    True
    """

    def __init__(self, temperature=1.0, top_k=0, top_p=1.0, seed=0):
        super().__init__(temperature=1.0)
        self.options = (temperature, top_k, top_p, seed)

    def __call__(
        self,
        next,
        prompt,
        cache=None,
        index=0,
        mask=None,
        stop_token_ids=None,
        hidden_states=None,
        model=None,
        **kwargs,
    ):
        # keras-hub's loop, with the position passed to the draw.
        temperature, top_k, top_p, seed = self.options
        seed = tf.cast(seed, tf.int32)
        index = tf.cast(index, tf.int32)
        mask = (
            tf.zeros_like(prompt, tf.bool)
            if mask is None
            else tf.cast(mask, tf.bool)
        )
        cache = () if cache is None else cache
        stop = None if stop_token_ids is None else list(stop_token_ids)

        def cond(prompt, cache, index):
            if stop is None:
                return tf.constant(True)
            new = tf.logical_and(
                tf.reduce_any(
                    tf.equal(prompt[..., None], tf.constant(stop)), -1
                ),
                tf.logical_not(mask),
            )
            return tf.logical_not(tf.reduce_all(tf.reduce_any(new, -1)))

        def body(prompt, cache, index):
            logits, _, cache = next(prompt, cache, index)
            token = next_token(
                logits, temperature, top_k, top_p, tf.stack([seed, index])
            )
            token = tf.cast(token, prompt.dtype)
            token = tf.where(mask[:, index], prompt[:, index], token)
            prompt = tf.tensor_scatter_nd_update(
                prompt,
                tf.stack(
                    [
                        tf.range(tf.shape(prompt)[0]),
                        tf.fill(tf.shape(token), index),
                    ],
                    axis=1,
                ),
                token,
            )
            return prompt, cache, index + 1

        prompt, _, _ = tf.while_loop(
            cond,
            body,
            (prompt, cache, index),
            maximum_iterations=tf.shape(prompt)[-1] - index,
        )
        return prompt
