"""Serving endpoints of a keras-hub causal LM: logits and generation.

- `logits`: `token_ids`, `padding_mask` → `logits` (float32).
- `generate_ids`: `token_ids`, `padding_mask` (right-padded prompts) and
  `max_new_tokens` → `token_ids`, `padding_mask` of prompt + continuation.
  Greedy decoding through keras-hub's own `generate_step` (KV cache, stop
  token); stock TensorFlow ops only, so stock TF Serving runs it.
- `generate` (exported as `serving_default`): `prompts` (strings) and
  `max_new_tokens` → `outputs` (strings: prompt + continuation). Tokenizing
  inside the graph needs TensorFlow Text's ops in the serving binary.
- `sample_ids` and `sample`: `generate_ids` and `generate` with the
  sampling options as inputs too: `temperature` (0: greedy), `top_k`
  (0: off), `top_p` (1: off) and `seed` (same request, same output).
"""

import keras_hub
import tensorflow as tf
from keras import ops

from tf_adapters.generation.sampling import TensorSampler
from tf_adapters.generation.sampling import check_options

SPECS = {
    "token_ids": tf.TensorSpec([None, None], tf.int32, name="token_ids"),
    "padding_mask": tf.TensorSpec([None, None], tf.int32, name="padding_mask"),
    "max_new_tokens": tf.TensorSpec([], tf.int32, name="max_new_tokens"),
    "prompts": tf.TensorSpec([None], tf.string, name="prompts"),
    "adapter": tf.TensorSpec([None], tf.string, name="adapter"),
    "temperature": tf.TensorSpec([], tf.float32, name="temperature"),
    "top_k": tf.TensorSpec([], tf.int32, name="top_k"),
    "top_p": tf.TensorSpec([], tf.float32, name="top_p"),
    "seed": tf.TensorSpec([], tf.int32, name="seed"),
}
SAMPLING = ("temperature", "top_k", "top_p", "seed")
# Endpoints that tokenize in the graph (TensorFlow Text ops).
TEXT_ENDPOINTS = ("generate", "sample")


def causal_lm_endpoints(causal_lm, max_prompt_length=None):
    """`{name: (fn, input_signature)}` for `ExportArchive.add_endpoint`."""
    preprocessor = causal_lm.preprocessor
    tokenizer = getattr(preprocessor, "tokenizer", None)
    stop = [tokenizer.end_token_id] if tokenizer is not None else None
    greedy = keras_hub.samplers.GreedySampler()
    # Learned position tables (GPT-2, OPT...) end at `max_sequence_length`.
    context = getattr(causal_lm.backbone, "max_sequence_length", None)

    def logits(token_ids, padding_mask):
        x = {"token_ids": token_ids, "padding_mask": padding_mask}
        return {"logits": ops.cast(causal_lm(x, training=False), "float32")}

    def decode(token_ids, padding_mask, max_new_tokens, sampler):
        # Each row gets at most `max_new_tokens` new tokens: keras-hub fills
        # every free slot of the buffer, so the buffer is the longest prompt
        # plus `max_new_tokens`, and a shorter row's extra tokens are masked.
        lengths = tf.reduce_sum(tf.cast(padding_mask != 0, tf.int32), axis=1)
        longest = tf.reduce_max(lengths)
        checks = [
            tf.debugging.assert_non_negative(
                max_new_tokens, message="max_new_tokens must be >= 0"
            )
        ]
        if context is not None:
            checks.append(
                tf.debugging.assert_less_equal(
                    longest + max_new_tokens,
                    context,
                    message=f"prompt tokens + max_new_tokens exceed the "
                    f"context of the model ({context} tokens); shorten the "
                    "prompt or ask for fewer new tokens",
                )
            )
        with tf.control_dependencies(checks):
            longest = tf.identity(longest)
        batch = tf.shape(token_ids)[0]
        room = tf.zeros([batch, max_new_tokens], tf.int32)
        x = {
            "token_ids": tf.concat([token_ids[:, :longest], room], axis=1),
            "padding_mask": tf.concat(
                [padding_mask[:, :longest] != 0, room != 0], axis=1
            ),
        }
        previous, causal_lm.sampler = causal_lm.sampler, sampler
        try:
            out = causal_lm.generate_step(x, stop_token_ids=stop)
        finally:
            causal_lm.sampler = previous
        positions = tf.range(longest + max_new_tokens)[None, :]
        keep = positions < (lengths + max_new_tokens)[:, None]
        mask = tf.logical_and(tf.cast(out["padding_mask"], tf.bool), keep)
        ids = tf.where(mask, tf.cast(out["token_ids"], tf.int32), 0)
        return {"token_ids": ids, "padding_mask": tf.cast(mask, tf.int32)}

    def generate_ids(token_ids, padding_mask, max_new_tokens):
        return decode(token_ids, padding_mask, max_new_tokens, greedy)

    def sample_ids(token_ids, padding_mask, max_new_tokens, *options):
        with tf.control_dependencies(check_options(*options[:3])):
            options = [tf.identity(option) for option in options]
        return decode(
            token_ids, padding_mask, max_new_tokens, TensorSampler(*options)
        )

    ids_specs = [SPECS[k] for k in ("token_ids", "padding_mask")]
    new_spec = [SPECS["max_new_tokens"]]
    sampling_specs = [SPECS[k] for k in SAMPLING]
    endpoints = {
        "logits": (logits, ids_specs),
        "generate_ids": (generate_ids, ids_specs + new_spec),
        "sample_ids": (sample_ids, ids_specs + new_spec + sampling_specs),
    }
    if tokenizer is None:
        return endpoints
    length = max_prompt_length or preprocessor.sequence_length
    special = list(getattr(tokenizer, "special_token_ids", []) or [])

    def text_endpoint(ids_fn):
        def fn(prompts, max_new_tokens, *options):
            x = preprocessor.generate_preprocess(
                prompts, sequence_length=length
            )
            out = ids_fn(
                tf.cast(x["token_ids"], tf.int32),
                tf.cast(x["padding_mask"], tf.int32),
                max_new_tokens,
                *options,
            )
            ids = out["token_ids"]
            mask = tf.cast(out["padding_mask"], tf.bool)
            for token in special:
                mask = tf.logical_and(mask, tf.not_equal(ids, token))
            text = tokenizer.detokenize(tf.ragged.boolean_mask(ids, mask))
            return {"outputs": text}

        return fn

    text_spec = [SPECS["prompts"]] + new_spec
    endpoints["generate"] = (text_endpoint(generate_ids), text_spec)
    endpoints["sample"] = (
        text_endpoint(sample_ids),
        text_spec + sampling_specs,
    )
    return endpoints
