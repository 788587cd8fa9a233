import collections

import pytest
import tensorflow_datasets as tfds

from tf_adapters.data.builtin import qa_records
from tf_adapters.data.builtin import sentiment_records
from tf_adapters.data.classification import load_classification_records


def test_builtin_sentiment_is_real_rotten_tomatoes():
    records = sentiment_records()
    counts = collections.Counter(r["label"] for r in records)
    assert counts == {"positive": 7403, "negative": 5405}
    assert all(r["text"] for r in records)


def test_builtin_qa_pairs():
    records = qa_records()
    assert len(records) > 2000
    assert {"prompt", "response", "topic"} <= set(records[0])
    assert len({r["topic"] for r in records}) >= 20


def test_sentiment_classification_records_are_cleaned_and_indexed():
    records, labels = load_classification_records("sentiment")
    assert labels == ["negative", "positive"]
    assert {r["label_index"] for r in records} == {0, 1}
    # Cleaning removes exact duplicates of the raw data.
    assert len(records) <= 12808
    assert len({r["text"] for r in records}) == len(records)


def test_qa_is_not_a_classification_dataset():
    with pytest.raises(ValueError, match="no labels"):
        load_classification_records("qa")


def test_tfds_loading_by_name_with_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        records, labels = load_classification_records("tfds:imdb_reviews")
    assert labels == ["neg", "pos"]
    assert 1 <= len(records) <= 12
    assert all(r["label"] in labels for r in records)
