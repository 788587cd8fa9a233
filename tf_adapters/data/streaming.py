"""Language-modelling data streamed from text files of any size.

`tf.data` reads the file line by line, cleans each batch of lines with the
same TensorFlow ops as `clean_text`, tokenizes, and packs the token stream
into full `sequence_length + 1` windows. Nothing holds the whole file: memory
stays bounded by the buffers (a few thousand lines), whatever the file size.
"""

import os

import tensorflow as tf

from tf_adapters.data.cleaning import clean_text


def stream_lines(paths, cleaning=None, lines_per_batch=1024, skip_lines=0):
    """A dataset of cleaned, non-empty lines of `paths` (UTF-8 text),
    without the first `skip_lines` of them."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Data file {path} not found.")
    lines = tf.data.TextLineDataset(paths)
    lines = lines.batch(lines_per_batch).map(
        lambda batch: clean_text(batch, cleaning),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    lines = lines.unbatch().filter(lambda line: tf.strings.length(line) > 0)
    return lines.skip(skip_lines)


def stream_packed(
    paths,
    tokenizer,
    sequence_length,
    batch_size,
    cleaning=None,
    lines_per_batch=1024,
    skip_lines=0,
    shuffle_seed=None,
    repeat=False,
    shuffle_buffer=2048,
):
    """Batches of `(x, y, sample_weight)` packed from the text of `paths`.

    Every line is tokenized and followed by the end token; the stream of
    tokens is cut as `pack_texts` cuts it (windows of `sequence_length + 1`
    every `sequence_length` tokens; a last, partial one is dropped), and each
    window gives inputs (all but the last token) and next-token targets (all
    but the first).

    Args:
        paths: str or list of str. Text files, one document per line.
        tokenizer: a keras-hub tokenizer (callable on string tensors).
        sequence_length: int. Tokens per example.
        batch_size: int.
        cleaning: `CleaningConfig`. Defaults to `CleaningConfig()`.
        lines_per_batch: int. Lines cleaned and tokenized together.
        skip_lines: int. Cleaned lines to leave out at the start (e.g. the
            ones held out for testing).
        shuffle_seed: int. Shuffle examples in a buffer of
            `shuffle_buffer` (`None`: file order).
        repeat: bool. Start over at the end of the files, forever.
        shuffle_buffer: int. Examples held for shuffling.
    """
    end = tf.constant([tokenizer.end_token_id], tf.int32)

    def tokenize(batch):
        ids = tokenizer(batch)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        # keras-hub's BPE gives -1 for a piece outside its vocabulary in
        # graph mode (eager mode drops it): drop it here too.
        ids = tf.ragged.boolean_mask(ids, ids >= 0)
        ends = tf.RaggedTensor.from_tensor(
            tf.tile(end[None, :], [tf.shape(batch)[0], 1])
        )
        return tf.concat([ids, ends], axis=1).flat_values

    tokens = (
        stream_lines(paths, cleaning, lines_per_batch, skip_lines)
        .batch(lines_per_batch)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
    )
    # Windows of `sequence_length + 1` tokens every `sequence_length`: the
    # last target of one example is the first input of the next, as in
    # `pack_texts`.
    windows = tokens.window(
        sequence_length + 1, shift=sequence_length, drop_remainder=True
    ).flat_map(lambda w: w.batch(sequence_length + 1))

    def split(window):
        x = {
            "token_ids": window[:-1],
            "padding_mask": tf.ones([sequence_length], tf.int32),
        }
        return x, window[1:], tf.ones([sequence_length], tf.float32)

    examples = windows.map(split, num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        examples = examples.repeat()
    if shuffle_seed is not None:
        # One seeded order for every iterator (the stream repeats before
        # the buffer), so the batches are a function of the seed alone.
        examples = examples.shuffle(
            shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False
        )
    return examples.batch(batch_size, drop_remainder=True).prefetch(
        tf.data.AUTOTUNE
    )


class StreamedData:
    """Training data streamed from text files, with `Encoded`'s `dataset`
    interface (what `run_finetune` calls)."""

    truncated = 0

    def __init__(self, paths, tokenizer, sequence_length, skip_lines=0):
        self.paths = paths
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.skip_lines = skip_lines

    def dataset(
        self,
        batch_size,
        shuffle_seed=None,
        repeat=False,
        drop_remainder=True,
        dynamic_padding=False,
        group_by_length=False,
        full_width_loss=False,
    ):
        # Batches are always whole, full-length chunks here
        # (`drop_remainder`, `dynamic_padding`, `group_by_length` and
        # `full_width_loss` are accepted for `Encoded`'s interface).
        return stream_packed(
            self.paths,
            self.tokenizer,
            self.sequence_length,
            batch_size,
            skip_lines=self.skip_lines,
            shuffle_seed=shuffle_seed,
            repeat=repeat,
        )
