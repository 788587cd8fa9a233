"""Each text metric against values worked out by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_adapters.evaluation.text import bleu
from tf_adapters.evaluation.text import exact_match
from tf_adapters.evaluation.text import perplexity
from tf_adapters.evaluation.text import rouge_l
from tf_adapters.evaluation.text import token_f1

CANDIDATE = "the cat sat on the red mat today"
REFERENCE = "the cat sat on the mat today"


def test_bleu_by_hand():
    # n-gram precisions of the candidate (8 words) against the reference
    # (7 words): 1-grams 7/8, 2-grams 5/7, 3-grams 3/6, 4-grams 2/5; no
    # brevity penalty (8 > 7). BLEU = (7/8 · 5/7 · 3/6 · 2/5) ** (1/4)
    # = (1/8) ** (1/4).
    assert bleu([CANDIDATE], [REFERENCE]) == pytest.approx(0.125**0.25, 1e-5)
    # No matching 4-gram and no smoothing: 0.
    assert bleu(["the cat is on the mat"], ["the cat sat on a mat"]) == 0.0
    # Shorter than the reference: brevity penalty exp(1 - 7/6) on a perfect
    # 6-word prefix.
    short = "the cat sat on the mat"
    assert bleu([short], [REFERENCE]) == pytest.approx(np.exp(1 - 7 / 6), 1e-5)


def test_rouge_l_by_hand():
    # LCS = the reference's 7 words; P = 7/8, R = 7/7, F = 2PR/(P+R).
    p, r = 7 / 8, 1.0
    assert rouge_l([CANDIDATE], [REFERENCE]) == pytest.approx(
        2 * p * r / (p + r), 1e-5
    )
    # Mean over pairs: 1 for an identical pair, 0 for a disjoint one.
    assert rouge_l(["a b", "c d"], ["a b", "e f"]) == pytest.approx(0.5)


def test_exact_match_and_token_f1_by_hand():
    preds = ["Paris.", "The Eiffel tower", "blue whale", ""]
    refs = ["paris", "Eiffel Tower in Paris", "a whale shark", "nothing"]
    # Normalized: "paris" = "paris"; others differ.
    assert exact_match(preds, refs) == 0.25
    # Pair 2: pred {eiffel, tower}, ref {eiffel, tower, in, paris}:
    # P = 1, R = 1/2, F1 = 2/3. Pair 3: {blue, whale} vs {whale, shark}:
    # P = R = 1/2, F1 = 1/2. Pair 4: empty prediction, F1 = 0.
    assert token_f1(preds, refs) == pytest.approx((1 + 2 / 3 + 0.5 + 0) / 4)


def test_metrics_reject_mismatched_inputs():
    with pytest.raises(ValueError, match="one prediction per reference"):
        token_f1(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="No references"):
        exact_match([], [])


def test_perplexity_by_hand():
    # A "model" whose next-token distribution is always [1/2, 1/4, 1/8,
    # 1/8]. Targets 0 and 1 with weight 1 (and a weight-0 target 3): mean
    # NLL = (ln 2 + ln 4) / 2 = 1.5 ln 2, perplexity = 2 ** 1.5.
    logits = np.log(np.array([0.5, 0.25, 0.125, 0.125], "float32"))

    class Fixed(keras.Model):
        def call(self, x):
            batch, length = (
                tf.shape(x["token_ids"])[0],
                tf.shape(x["token_ids"])[1],
            )
            return tf.broadcast_to(logits, [batch, length, 4])

    x = {"token_ids": np.zeros((1, 3), "int32")}
    y = np.array([[0, 1, 3]], "int32")
    w = np.array([[1, 1, 0]], "float32")
    ds = tf.data.Dataset.from_tensors((x, y, w))
    assert perplexity(Fixed(), ds) == pytest.approx(2**1.5, 1e-5)


def test_perplexity_traces_once_for_every_batch_size():
    traces = []

    class Uniform(keras.Model):
        def call(self, x):
            traces.append(1)  # Python runs only while tracing
            shape = tf.shape(x["token_ids"])
            return tf.zeros([shape[0], shape[1], 8])

    x = {"token_ids": np.zeros((5, 3), "int32")}
    y = np.ones((5, 3), "int32")
    w = np.ones((5, 3), "float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(2)  # 2, 2, 1
    assert perplexity(Uniform(), ds) == pytest.approx(8.0, 1e-5)
    assert len(traces) == 1
