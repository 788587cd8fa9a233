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


def test_austen_novels_when_the_optional_source_is_installed():
    import importlib.util
    import os

    from tf_adapters.data.builtin import AUSTEN_DATA
    from tf_adapters.data.builtin import austen_records

    if not os.path.isfile(AUSTEN_DATA + ".rdx") or not importlib.util.find_spec(
        "rdata"
    ):
        with pytest.raises((FileNotFoundError, ModuleNotFoundError)):
            austen_records()
        pytest.skip(
            "optional: apt-get install r-cran-janeaustenr; pip install rdata"
        )
    records = austen_records()
    books = collections.Counter(r["book"] for r in records)
    assert set(books) == {
        "emma",
        "mansfieldpark",
        "northangerabbey",
        "persuasion",
        "prideprejudice",
        "sensesensibility",
    }
    assert any(
        r["text"].startswith("It is a truth universally") for r in records
    )
    words = sum(len(r["text"].split()) for r in records)
    assert 650_000 < words < 800_000, words


def test_missing_austen_source_says_how_to_install(tmp_path):
    from tf_adapters.data.builtin import austen_records

    with pytest.raises(FileNotFoundError, match="apt-get install r-cran"):
        austen_records(str(tmp_path / "Rdata"))


def test_load_data_from_tfds_names_the_classes():
    import tf_adapters as tfa

    with tfds.testing.mock_data(num_examples=12):
        records = tfa.load_data("tfds:imdb_reviews", fields=["text", "label"])
    assert 1 <= len(records) <= 12
    assert {r["label"] for r in records} <= {"neg", "pos"}
