"""Batched greedy generation from token ids, for evaluating text tasks."""

import tensorflow as tf

from tf_adapters.data.encoding import pad_rows
from tf_adapters.generation.causal_lm_endpoints import causal_lm_endpoints


def generate_continuations(
    causal_lm, prompt_ids, max_new_tokens, batch_size, progress=None
):
    """Greedy continuation of each prompt, as text.

    Uses the same decoding as the exported `generate_ids` signature
    (keras-hub's `generate_step`, KV cache, greedy), compiled once. Each
    continuation is cut at its first special token (end of text, end of
    turn...), and the prompt is not included.

    Args:
        causal_lm: `keras_hub.models.CausalLM` with a tokenizer.
        prompt_ids: list of lists of int. Prompts, already tokenized.
        max_new_tokens: int.
        batch_size: int.
        progress: a `Progress` (`tf_adapters.training.progress`) counting
            batches, or `None`.

    Returns:
        A list of str, one per prompt.
    """
    tokenizer = causal_lm.preprocessor.tokenizer
    fn, signature = causal_lm_endpoints(causal_lm)["generate_ids"]
    compiled = tf.function(fn, input_signature=signature)
    special = set(getattr(tokenizer, "special_token_ids", []) or [])
    special.add(tokenizer.end_token_id)
    if not prompt_ids:
        return []
    continuations = []
    for start in range(0, len(prompt_ids), batch_size):
        rows = prompt_ids[start : start + batch_size]
        width = max(len(r) for r in rows)
        ids, mask = pad_rows(rows, width, tokenizer.pad_token_id)
        out = compiled(
            tf.constant(ids), tf.constant(mask), tf.constant(max_new_tokens)
        )
        out_ids = out["token_ids"].numpy()
        out_mask = out["padding_mask"].numpy()
        for i, row in enumerate(rows):
            new = []
            for token, keep in zip(
                out_ids[i, len(row) :], out_mask[i, len(row) :], strict=False
            ):
                if not keep or int(token) in special:
                    break
                new.append(int(token))
            continuations.append(new)
        if progress is not None:
            progress.update(start // batch_size + 1)
    texts = tokenizer.detokenize(tf.ragged.constant(continuations, tf.int32))
    if hasattr(texts, "numpy"):
        texts = texts.numpy().tolist()
    return [
        (
            t.decode("utf-8", errors="replace") if isinstance(t, bytes) else t
        ).strip()
        for t in texts
    ]
