import numpy as np
import pytest
import tiny_models

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
