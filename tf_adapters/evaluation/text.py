"""Metrics of generated text against references.

- `exact_match` and `token_f1`: SQuAD's answer normalization (lower case,
  no punctuation, no articles, single spaces), then equality or the F1 of
  the bag of words (Rajpurkar et al., 2016).
- `rouge_l` and `bleu`: keras-hub's `RougeL` (F-measure, via the
  `rouge-score` package) and `Bleu` (corpus BLEU-4, its default tokenizer).
- `perplexity`: keras-hub's `Perplexity` over weighted target tokens.
"""

import collections
import re
import string

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text):
    """SQuAD's normalization.

    >>> normalize_answer("The  Cat, sat!")
    'cat sat'
    """
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(predictions, references):
    """Fraction of predictions equal to their reference after normalizing.

    >>> exact_match(["Paris.", "a dog"], ["paris", "the cat"])
    0.5
    """
    _check_pairs(predictions, references)
    hits = [
        normalize_answer(p) == normalize_answer(r)
        for p, r in zip(predictions, references, strict=True)
    ]
    return float(np.mean(hits))


def _f1(prediction, reference):
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum(
        (collections.Counter(pred) & collections.Counter(ref)).values()
    )
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(predictions, references):
    """Mean word-level F1 between each prediction and its reference.

    >>> round(token_f1(["the cat sat down"], ["a cat sat"]), 4)  # 2/3, 1
    0.8
    """
    _check_pairs(predictions, references)
    return float(
        np.mean(
            [_f1(p, r) for p, r in zip(predictions, references, strict=True)]
        )
    )


def rouge_l(predictions, references):
    """Mean ROUGE-L F-measure (keras-hub's `RougeL`).

    >>> round(rouge_l(["the cat sat"], ["the cat sat down"]), 4)
    0.8571
    """
    import keras_hub

    _check_pairs(predictions, references)
    metric = keras_hub.metrics.RougeL()
    metric.update_state(list(references), list(predictions))
    return float(metric.result()["f1_score"])


def bleu(predictions, references):
    """Corpus BLEU-4 in [0, 1] (keras-hub's `Bleu`), one reference each.

    >>> bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
    1.0
    """
    import keras_hub

    _check_pairs(predictions, references)
    metric = keras_hub.metrics.Bleu()
    metric.update_state([[r] for r in references], list(predictions))
    return float(metric.result())


def perplexity(model, dataset):
    """`exp` of the mean token cross-entropy, weighted by sample weights.

    One `tf.function` updates keras-hub's `Perplexity` on each batch,
    traced once for every batch size (the batch dimension is left free),
    and compiled with XLA when the model is (`model.jit_compile`).

    Args:
        model: a `keras.Model` mapping inputs to next-token logits.
        dataset: a `tf.data.Dataset` of `(x, y, sample_weight)` batches.

    Returns:
        float: the perplexity.
    """
    import keras_hub
    import tensorflow as tf

    metric = keras_hub.metrics.Perplexity(from_logits=True)
    spec = tf.nest.map_structure(
        lambda s: tf.TensorSpec([None, *s.shape[1:]], s.dtype),
        dataset.element_spec,
    )

    def update(x, y, weight):
        metric.update_state(y, model(x, training=False), sample_weight=weight)

    update = tf.function(
        update,
        input_signature=list(spec),
        jit_compile=bool(getattr(model, "jit_compile", False)),
    )
    for x, y, weight in dataset:
        update(x, y, weight)
    return float(metric.result())


def _check_pairs(predictions, references):
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions for {len(references)} "
            "references; pass one prediction per reference."
        )
    if not references:
        raise ValueError("No references to score.")
