import numpy as np
import pytest
import tiny_models

from tf_adapters.data.encoding import Encoded
from tf_adapters.data.encoding import encode_prompt_response
from tf_adapters.data.encoding import encode_templated
from tf_adapters.data.encoding import pack_texts
from tf_adapters.data.encoding import tokenize


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_models.gpt2_causal_lm().preprocessor.tokenizer


def test_prompt_response_loss_covers_only_the_response(tokenizer):
    enc = encode_prompt_response(
        [(" airplane", " airport"), (" the", " air plane")], tokenizer, 8
    )
    prompt = tokenize(tokenizer, [" airplane"])[0]
    response = tokenize(tokenizer, [" airport"])[0]
    row = prompt + response + [tokenizer.end_token_id]
    n = len(row)
    ids, mask = enc.x["token_ids"][0], enc.x["padding_mask"][0]
    assert ids[:n].tolist() == row
    assert mask.tolist() == [1] * n + [0] * (8 - n)
    assert enc.y[0][: n - 1].tolist() == row[1:]
    # Targets inside the prompt weigh 0; response tokens and the end token 1.
    expected = [0] * (len(prompt) - 1) + [1] * (len(response) + 1)
    assert enc.sample_weight[0].tolist() == expected + [0] * (8 - n + 1)
    assert enc.truncated == 0


def test_prompt_response_truncation_is_counted(tokenizer):
    enc = encode_prompt_response([(" airplane " * 5, " airport")], tokenizer, 4)
    assert enc.truncated == 1
    assert enc.x["token_ids"].shape == (1, 4)
    assert enc.sample_weight.sum() == 0  # the response was cut away


def test_templated_prompts_cut_the_text_not_the_template(tokenizer):
    template = " the {text} air"
    enc = encode_templated(
        [" plane", " airplane airplane airplane airplane"],
        tokenizer,
        template,
        6,
    )
    the, air = tokenize(tokenizer, [" the ", " air"])
    ids, mask = enc.x["token_ids"], enc.x["padding_mask"]
    assert enc.truncated == 1
    assert ids[1].tolist()[: len(the)] == the
    assert ids[1].tolist()[-len(air) :] == air and mask[1].all()
    plane = tokenize(tokenizer, [" plane"])[0]
    assert ids[0, : mask[0].sum()].tolist() == the + plane + air
    with pytest.raises(ValueError, match="template alone takes"):
        encode_templated(["x"], tokenizer, template, 2)


def test_packing_fills_every_chunk(tokenizer):
    texts = [" airplane at airport", " the air"] * 5
    enc = pack_texts(texts, tokenizer, 5)
    ids, y = enc.x["token_ids"], enc.y
    assert ids.shape[1] == 5 and enc.x["padding_mask"].all()
    np.testing.assert_array_equal(ids[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(ids[1:, 0], y[:-1, -1])
    assert tokenizer.end_token_id in ids
    with pytest.raises(ValueError, match="fewer than one chunk"):
        pack_texts([" air"], tokenizer, 50)


def test_dataset_batches(tokenizer):
    enc = pack_texts([" airplane at airport"] * 10, tokenizer, 4)
    x, y, w = next(iter(enc.dataset(3, shuffle_seed=0)))
    assert x["token_ids"].shape == (3, 4) and y.shape == (3, 4)
    assert w.shape == (3, 4)
    # No autotuning: deleting an autotuned iterator waits for its tuning
    # thread's next wake-up (up to about a minute once it has run a while).
    for ds in (enc.dataset(3), enc.dataset(3, shuffle_seed=0, repeat=True)):
        assert ds.options().autotune.enabled is False


def _ragged(lengths, width=8):
    """An `Encoded` of right-padded rows of the given lengths; each row's
    ids are its index, its label the index too."""
    n = len(lengths)
    ids = np.zeros((n, width), "int32")
    mask = np.zeros((n, width), "int32")
    for i, length in enumerate(lengths):
        ids[i, :length] = i + 1
        mask[i, :length] = 1
    return Encoded(
        {"token_ids": ids, "padding_mask": mask}, np.arange(n, dtype="int32")
    )


def _rows(batch):
    """The row indices a batch holds (its labels)."""
    return [int(i) for i in batch[1]]


def test_dynamic_padding_cuts_each_batch_to_its_longest_row():
    enc = _ragged([2, 3, 1, 5, 4, 2])
    batches = list(enc.dataset(2, dynamic_padding=True))
    assert [b[0]["token_ids"].shape[1] for b in batches] == [3, 5, 4]
    for x, y in batches:
        for row, i in zip(x["token_ids"].numpy(), y.numpy(), strict=True):
            np.testing.assert_array_equal(
                row, enc.x["token_ids"][i, : len(row)]
            )
    fixed = list(enc.dataset(2))
    assert {b[0]["token_ids"].shape[1] for b in fixed} == {8}


def test_dynamic_padding_cuts_per_token_targets_and_weights(tokenizer):
    pairs = [("The air", " at"), ("The airplane at the airport", " air")]
    enc = encode_prompt_response(pairs, tokenizer, 16)
    (x, y, w), *_ = enc.dataset(2, dynamic_padding=True)
    longest = int(enc.x["padding_mask"].sum(1).max())
    assert longest < 16
    assert x["token_ids"].shape == y.shape == w.shape == (2, longest)
    # Nothing weighted is cut away.
    assert float(np.sum(w)) == float(enc.sample_weight.sum())


def test_sorted_by_length_and_back():
    enc = _ragged([4, 1, 3, 1, 2])
    rows, order = enc.sorted_by_length()
    assert list(rows.lengths()) == [1, 1, 2, 3, 4]
    assert list(order) == [1, 3, 4, 2, 0]  # stable: ties keep their order
    predictions = rows.y * 10  # any per-row output, in sorted order
    restored = np.empty_like(predictions)
    restored[order] = predictions
    np.testing.assert_array_equal(restored, enc.y * 10)


def test_group_by_length_batches_rows_of_similar_length():
    from tf_adapters.data import encoding

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 65, size=4 * encoding.GROUP_BATCHES * 4)
    enc = _ragged(lengths, width=64)

    def one_pass(**kwargs):
        ds = enc.dataset(4, shuffle_seed=3, dynamic_padding=True, **kwargs)
        return list(ds)

    grouped, free = one_pass(group_by_length=True), one_pass()
    # One pass: every row once, in whole batches.
    rows = sorted(i for b in grouped for i in _rows(b))
    assert rows == list(range(len(lengths)))

    def padded(batches):
        return sum(b[0]["token_ids"].shape[1] * 4 for b in batches)

    # Measured on these lengths: far less padding than shuffled freely.
    assert padded(grouped) < 0.75 * padded(free)
    # A function of the seed alone, not the same every pass or seed.
    again = one_pass(group_by_length=True)
    assert [_rows(b) for b in again] == [_rows(b) for b in grouped]
    other = list(
        enc.dataset(
            4, shuffle_seed=4, dynamic_padding=True, group_by_length=True
        )
    )
    assert [_rows(b) for b in other] != [_rows(b) for b in grouped]
    two = list(
        enc.dataset(
            4,
            shuffle_seed=3,
            repeat=True,
            dynamic_padding=True,
            group_by_length=True,
        ).take(2 * len(grouped))
    )
    assert [_rows(b) for b in two[: len(grouped)]] == [
        _rows(b) for b in grouped
    ]
    assert [_rows(b) for b in two[len(grouped) :]] != [
        _rows(b) for b in grouped
    ]


def test_group_by_length_keeps_a_last_smaller_batch_unless_dropped():
    enc = _ragged([3, 1, 2, 5, 4, 2, 1])  # 7 rows, batches of 3
    kept = list(
        enc.dataset(
            3, shuffle_seed=0, dynamic_padding=True, group_by_length=True
        )
    )
    assert sorted(len(_rows(b)) for b in kept) == [1, 3, 3]
    dropped = list(
        enc.dataset(
            3,
            shuffle_seed=0,
            drop_remainder=True,
            dynamic_padding=True,
            group_by_length=True,
        )
    )
    assert [len(_rows(b)) for b in dropped] == [3, 3]


def test_group_by_length_repeated_gives_whole_batches_only():
    enc = _ragged([3, 1, 2, 5, 4, 2, 1])  # 7 rows, batches of 3
    ds = enc.dataset(
        3,
        shuffle_seed=0,
        repeat=True,
        dynamic_padding=True,
        group_by_length=True,
    )
    assert {len(_rows(b)) for b in ds.take(12)} == {3}


def test_full_width_loss_keeps_the_full_width_batch_loss(tokenizer):
    import keras

    pairs = [("The air", " at"), ("The airplane at the airport", " air")]
    enc = encode_prompt_response(pairs, tokenizer, 16)
    vocab = int(enc.x["token_ids"].max()) + 1
    logits = np.random.default_rng(0).normal(size=(2, 16, vocab))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    full = float(loss(enc.y, logits, sample_weight=enc.sample_weight))
    (_, y, w), *_ = enc.dataset(2, dynamic_padding=True, full_width_loss=True)
    width = y.shape[1]
    assert width < 16
    cut = float(loss(y, logits[:, :width], sample_weight=w))
    np.testing.assert_allclose(cut, full, rtol=1e-6)
    # Unscaled, Keras's mean over batch × width would be 16 / width larger.
    (_, _, raw), *_ = enc.dataset(2, dynamic_padding=True)
    unscaled = float(loss(y, logits[:, :width], sample_weight=raw))
    np.testing.assert_allclose(unscaled, full * 16 / width, rtol=1e-6)
