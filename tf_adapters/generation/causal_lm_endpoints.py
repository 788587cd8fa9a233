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
    graph = CausalLMEndpoints(causal_lm)
    ids_specs = [SPECS[k] for k in ("token_ids", "padding_mask")]
    new_spec = [SPECS["max_new_tokens"]]
    sampling_specs = [SPECS[k] for k in SAMPLING]
    endpoints = {
        "logits": (graph.logits, ids_specs),
        "generate_ids": (graph.generate_ids, ids_specs + new_spec),
        "sample_ids": (graph.sample_ids, ids_specs + new_spec + sampling_specs),
    }
    if graph.tokenizer is None:
        return endpoints
    length = max_prompt_length or causal_lm.preprocessor.sequence_length
    text_spec = [SPECS["prompts"]] + new_spec
    endpoints["generate"] = (
        graph.text_endpoint(graph.generate_ids, length),
        text_spec,
    )
    endpoints["sample"] = (
        graph.text_endpoint(graph.sample_ids, length),
        text_spec + sampling_specs,
    )
    return endpoints


class CausalLMEndpoints:
    """The graph functions behind the endpoints of one causal LM."""

    def __init__(self, causal_lm):
        self.causal_lm = causal_lm
        self.preprocessor = causal_lm.preprocessor
        self.tokenizer = getattr(self.preprocessor, "tokenizer", None)
        self.stop = (
            [self.tokenizer.end_token_id]
            if self.tokenizer is not None
            else None
        )
        self.greedy = keras_hub.samplers.GreedySampler()
        # Learned position tables (GPT-2, OPT...) end at `max_sequence_length`.
        self.context = getattr(causal_lm.backbone, "max_sequence_length", None)

    def logits(self, token_ids, padding_mask):
        x = {"token_ids": token_ids, "padding_mask": padding_mask}
        out = self.causal_lm(x, training=False)
        return {"logits": ops.cast(out, "float32")}

    def generate_ids(self, token_ids, padding_mask, max_new_tokens):
        return self.decode(token_ids, padding_mask, max_new_tokens, self.greedy)

    def sample_ids(self, token_ids, padding_mask, max_new_tokens, *options):
        with tf.control_dependencies(check_options(*options[:3])):
            options = [tf.identity(option) for option in options]
        sampler = TensorSampler(*options)
        return self.decode(token_ids, padding_mask, max_new_tokens, sampler)

    def decode(self, token_ids, padding_mask, max_new_tokens, sampler):
        # Each row gets at most `max_new_tokens` new tokens: keras-hub fills
        # every free slot of the buffer, so the buffer is the longest prompt
        # plus `max_new_tokens`, and a shorter row's extra tokens are masked.
        lengths = tf.reduce_sum(tf.cast(padding_mask != 0, tf.int32), axis=1)
        longest = self._checked_longest(lengths, max_new_tokens)
        room = tf.zeros([tf.shape(token_ids)[0], max_new_tokens], tf.int32)
        x = {
            "token_ids": tf.concat([token_ids[:, :longest], room], axis=1),
            "padding_mask": tf.concat(
                [padding_mask[:, :longest] != 0, room != 0], axis=1
            ),
        }
        causal_lm = self.causal_lm
        previous, causal_lm.sampler = causal_lm.sampler, sampler
        try:
            out = causal_lm.generate_step(x, stop_token_ids=self.stop)
        finally:
            causal_lm.sampler = previous
        positions = tf.range(longest + max_new_tokens)[None, :]
        keep = positions < (lengths + max_new_tokens)[:, None]
        mask = tf.logical_and(tf.cast(out["padding_mask"], tf.bool), keep)
        ids = tf.where(mask, tf.cast(out["token_ids"], tf.int32), 0)
        return {"token_ids": ids, "padding_mask": tf.cast(mask, tf.int32)}

    def _checked_longest(self, lengths, max_new_tokens):
        """The longest prompt, once the request is known to fit."""
        longest = tf.reduce_max(lengths)
        checks = [
            tf.debugging.assert_non_negative(
                max_new_tokens, message="max_new_tokens must be >= 0"
            )
        ]
        if self.context is not None:
            checks.append(
                tf.debugging.assert_less_equal(
                    longest + max_new_tokens,
                    self.context,
                    message=f"prompt tokens + max_new_tokens exceed the "
                    f"context of the model ({self.context} tokens); shorten "
                    "the prompt or ask for fewer new tokens",
                )
            )
        with tf.control_dependencies(checks):
            return tf.identity(longest)

    def text_endpoint(self, ids_fn, length):
        """`ids_fn` with prompts tokenized and outputs detokenized in the
        graph."""
        special = list(getattr(self.tokenizer, "special_token_ids", []) or [])

        def fn(prompts, max_new_tokens, *options):
            x = self.preprocessor.generate_preprocess(
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
            text = self.tokenizer.detokenize(tf.ragged.boolean_mask(ids, mask))
            return {"outputs": text}

        return fn
