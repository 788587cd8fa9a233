"""Tokenizing and encoding records into fixed-length tf.data datasets.

Three shapes of data:

- classification prompts: a template around each text, padded to a length,
  with the text (never the template) truncated when too long;
- prompt → response pairs: the loss covers response tokens only;
- plain text for language modelling: packed into full-length chunks.

Truncation is counted and returned so callers can report it.
"""

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Encoded:
    """Arrays for `model.fit`, plus how many records were truncated."""

    x: dict
    y: np.ndarray | None = None
    sample_weight: np.ndarray | None = None
    truncated: int = 0

    def dataset(
        self,
        batch_size,
        shuffle_seed=None,
        repeat=False,
        drop_remainder=False,
        dynamic_padding=False,
        group_by_length=False,
        full_width_loss=False,
    ):
        """A batched `tf.data.Dataset` of `(x, y[, sample_weight])`.

        With `shuffle_seed`, pass `e` over the data follows the permutation
        `stateless_shuffle(range(n), seed=[shuffle_seed, e])`: the batch
        stream is a function of the seed alone, not of how many iterators
        were made before (as `Dataset.shuffle` is), so one device, a
        `tf.distribute` strategy and a resumed run all see the same batches.

        Args:
            batch_size: int.
            shuffle_seed: int or `None` (the rows in order).
            repeat: bool. Pass over the data again and again.
            drop_remainder: bool. Leave out a last, smaller batch.
            dynamic_padding: bool. Cut each batch to its longest row (rows
                are right-padded; `padding_mask` gives their lengths), so
                the batches' sequence length varies: for a model that is
                not compiled with XLA, which compiles a program per shape.
            group_by_length: bool. With `shuffle_seed` and
                `dynamic_padding`: each pass's shuffled rows are taken
                `GROUP_BATCHES` batches at a time and sorted by length
                there, and the pass's batches are then shuffled, so a
                batch holds rows of similar length and carries little
                padding (as Hugging Face's `group_by_length`). With
                `repeat`, each pass's last, smaller batch is left out (its
                rows come in other passes), so every batch is whole.
            full_width_loss: bool. With `dynamic_padding`: per-token
                sample weights are scaled by the batch's width over the
                full width, so that a loss Keras averages over every
                position (batch × width: its default reduction) is the
                full-width batch's, whatever the cut. For `fit`; not for
                a metric that divides by the weights' sum (perplexity).
        """
        parts = [self.x]
        if self.y is not None:
            parts.append(self.y)
            if self.sample_weight is not None:
                parts.append(self.sample_weight)
        parts = tf.nest.map_structure(tf.convert_to_tensor, tuple(parts))
        batches = self.index_batches(
            batch_size,
            shuffle_seed,
            repeat,
            drop_remainder,
            group_by_length=group_by_length and dynamic_padding,
        )

        def gather(i):
            batch = tf.nest.map_structure(lambda t: tf.gather(t, i), parts)
            if not dynamic_padding:
                return batch
            return _cut_to_longest(batch, full_width_loss)

        return without_autotune(batches.map(gather).prefetch(2))

    def index_batches(
        self,
        batch_size,
        shuffle_seed=None,
        repeat=False,
        drop_remainder=False,
        group_by_length=False,
    ):
        """A `tf.data.Dataset` of the row indices of each batch `dataset`
        makes with the same arguments (`group_by_length` here is
        `dataset`'s `group_by_length and dynamic_padding`): which rows a
        run trains on, without gathering them."""
        n = len(self.x["token_ids"])
        if shuffle_seed is None:
            order = tf.data.Dataset.range(n)
            if repeat:
                order = order.repeat()
            return order.batch(batch_size, drop_remainder=drop_remainder)
        if group_by_length:
            batches = _length_grouped_batches(
                self.lengths(), batch_size, shuffle_seed, repeat
            )
            if drop_remainder:
                batches = batches.filter(lambda i: tf.shape(i)[0] == batch_size)
            return batches
        order = _shuffled_passes(
            n,
            shuffle_seed,
            repeat,
            lambda perm, seed, e: tf.data.Dataset.from_tensor_slices(perm),
        )
        return order.batch(batch_size, drop_remainder=drop_remainder)

    def lengths(self):
        """Each row's length (the count of its `padding_mask`'s ones)."""
        return np.asarray(self.x["padding_mask"]).sum(axis=1)

    def sorted_by_length(self):
        """`(sorted, order)`: these rows sorted by length (stable), and
        the order taken (`sorted.x[k] == self.x[k][order]`), so that
        predictions on `sorted` go back in place by
        `restored[order] = predictions`. Batches of sorted rows cut to
        their longest row (`dynamic_padding`) carry little padding."""
        order = np.argsort(self.lengths(), kind="stable")

        def take(a):
            return None if a is None else np.asarray(a)[order]

        x = {k: take(v) for k, v in self.x.items()}
        rows = Encoded(x, take(self.y), take(self.sample_weight))
        rows.truncated = self.truncated
        return rows, order


# Batches per group that `group_by_length` sorts by length: larger groups
# leave less padding (on the built-in reviews, 64 tokens at most, a batch
# of 16 is padded to 62 tokens on average when shuffled freely, to 47 in
# groups of 8 batches, 46 in groups of 16) but sort more of a pass at once.
GROUP_BATCHES = 16


def pass_permutation(n, seed, e):
    """The order of `n` rows in pass `e` (an int64 tensor or int) of the
    stream shuffled by `seed`: `stateless_shuffle(range(n), seed=[seed,
    e])`, a function of the seed alone (`Encoded.dataset`)."""
    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype="int64"),
        seed=tf.stack([tf.cast(seed, "int64"), tf.cast(e, "int64")]),
    )


def _shuffled_passes(n, shuffle_seed, repeat, each_pass):
    """Passes over `n` rows (one, or endless with `repeat`), pass `e` made
    by `each_pass(perm, seed, e)` from its permutation
    `perm = pass_permutation(n, shuffle_seed, e)`, `seed` being
    `shuffle_seed` as an int64 tensor: a function of the seed alone."""
    seed = tf.constant(int(shuffle_seed), "int64")

    def one_pass(e):
        return each_pass(pass_permutation(n, seed, e), seed, e)

    passes = tf.data.Dataset.counter()
    if not repeat:
        passes = passes.take(1)
    return passes.flat_map(one_pass)


def _length_grouped_batches(lengths, batch_size, shuffle_seed, repeat):
    """Index batches for `group_by_length` (see `Encoded.dataset`)."""
    n = len(lengths)
    lengths = tf.constant(lengths, "int64")
    group = batch_size * GROUP_BATCHES

    def one_pass(perm, seed, e):
        # Sorted by (group, length): stable, so ties keep the shuffle.
        key = tf.range(n, dtype="int64") // group * (
            tf.reduce_max(lengths) + 1
        ) + tf.gather(lengths, perm)
        perm = tf.gather(perm, tf.argsort(key, stable=True))
        # Repeated: whole batches only (the ungrouped stream's batches run
        # on across passes; these are made pass by pass).
        end = n - n % batch_size if repeat and n >= batch_size else n
        starts = tf.random.experimental.stateless_shuffle(
            tf.range(0, end, batch_size, dtype="int64"),
            # Pass e's rows use [seed, e]; its batch order [seed, -1 - e].
            seed=tf.stack([seed, -1 - e]),
        )
        return tf.data.Dataset.from_tensor_slices(starts).map(
            lambda s: perm[s : s + batch_size]
        )

    return _shuffled_passes(n, shuffle_seed, repeat, one_pass)


def _cut_to_longest(batch, full_width_loss=False):
    """A batch of right-padded rows cut to its longest row: every array
    whose axis 1 is the rows' sequence axis (as long as `padding_mask`'s:
    the inputs, and per-token targets and weights). With
    `full_width_loss`, per-token sample weights (a third element) are
    scaled by the cut width over the full width (see `Encoded.dataset`)."""
    mask = batch[0]["padding_mask"]
    width = mask.shape[1]
    longest = tf.maximum(
        tf.reduce_max(tf.reduce_sum(tf.cast(mask, "int32"), axis=1)), 1
    )

    def cut(t):
        if t.shape.rank is not None and t.shape.rank >= 2:
            if t.shape[1] == width:
                return t[:, :longest]
        return t

    batch = tf.nest.map_structure(cut, batch)
    if full_width_loss and len(batch) == 3 and batch[2].shape.rank == 2:
        scale = tf.cast(longest, batch[2].dtype) / width
        batch = (*batch[:2], batch[2] * scale)
    return batch


def without_autotune(dataset):
    """`dataset` with tf.data's autotuning off.

    An autotuned iterator runs a thread that re-tunes the pipeline, waking
    at intervals that grow to about a minute, and deleting the iterator
    waits for that thread's next wake-up (TF 2.21): in the main job's
    stages, up to 59 s passed between the end of a `predict` and its
    return (measured with `py-spy` and `gdb`: the main thread in
    `~IteratorResource`, the thread in `Model::OptimizeLoop`). Gathering
    a batch of rows from arrays in memory has nothing to tune.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def tokenize(tokenizer, texts):
    """Token ids of each text, as Python lists."""
    if not texts:
        return []
    ids = tokenizer(tf.constant(list(texts)))
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_list()
    return [[int(i) for i in row] for row in ids]


def pad_rows(rows, length, pad_id):
    """Right-pads lists of ids to `length`: `(ids, mask)` int32 arrays."""
    ids = np.full((len(rows), length), pad_id, "int32")
    mask = np.zeros((len(rows), length), "int32")
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def encode_templated(texts, tokenizer, template, sequence_length):
    """Right-padded ids of `template.format(text=...)` for each text.

    The text is cut (from its end) so the whole prompt fits; the template is
    never cut. The prompt's last token is where an answer would start.
    """
    prefix, suffix = (
        tokenize(tokenizer, [part])[0] if part else []
        for part in template.split("{text}")
    )
    budget = sequence_length - len(prefix) - len(suffix)
    if budget < 1:
        raise ValueError(
            f"The prompt template alone takes {len(prefix) + len(suffix)} "
            f"tokens; `sequence_length` ({sequence_length}) must be larger."
        )
    rows, truncated = [], 0
    for ids in tokenize(tokenizer, texts):
        truncated += len(ids) > budget
        rows.append(prefix + ids[:budget] + suffix)
    ids, mask = pad_rows(rows, sequence_length, tokenizer.pad_token_id)
    return Encoded(
        {"token_ids": ids, "padding_mask": mask}, truncated=truncated
    )


def encode_prompt_response(pairs, tokenizer, sequence_length):
    """Causal-LM arrays whose loss covers the response (and end token) only.

    Args:
        pairs: list of `(prompt, response)` strings.
        tokenizer: the base model's tokenizer.
        sequence_length: int. Length of `token_ids`.
    """
    prompts = tokenize(tokenizer, [p for p, _ in pairs])
    responses = tokenize(tokenizer, [r for _, r in pairs])
    end = tokenizer.end_token_id
    rows, weights, truncated = [], [], 0
    for prompt, response in zip(prompts, responses, strict=True):
        seq = prompt + response + [end]
        weight = [0] * len(prompt) + [1] * (len(response) + 1)
        if len(seq) > sequence_length + 1:
            truncated += 1
            seq, weight = (
                seq[: sequence_length + 1],
                weight[: sequence_length + 1],
            )
        rows.append(seq)
        weights.append(weight)
    full, mask = pad_rows(rows, sequence_length + 1, tokenizer.pad_token_id)
    w, _ = pad_rows(weights, sequence_length + 1, 0)
    x = {"token_ids": full[:, :-1], "padding_mask": mask[:, :-1]}
    # Position t predicts token t + 1: weight it by the target's weight.
    return Encoded(x, full[:, 1:], w[:, 1:].astype("float32"), truncated)


def pack_texts(texts, tokenizer, sequence_length):
    """Concatenates texts (end token between them) into full chunks."""
    stream = []
    for ids in tokenize(tokenizer, texts):
        stream += ids + [tokenizer.end_token_id]
    n = (len(stream) - 1) // sequence_length
    if n < 1:
        raise ValueError(
            f"The texts hold {len(stream)} tokens, fewer than one chunk of "
            f"{sequence_length + 1}; add text or shorten `sequence_length`."
        )
    data = np.asarray(stream[: n * sequence_length + 1], "int32")
    ids = np.stack(
        [
            data[i * sequence_length : (i + 1) * sequence_length]
            for i in range(n)
        ]
    )
    y = np.stack(
        [
            data[i * sequence_length + 1 : (i + 1) * sequence_length + 1]
            for i in range(n)
        ]
    )
    x = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    return Encoded(x, y, np.ones_like(y, "float32"))
