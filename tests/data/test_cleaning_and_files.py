import json

import numpy as np
import pytest

from tf_adapters.data.cleaning import CleaningConfig
from tf_adapters.data.cleaning import clean_records
from tf_adapters.data.cleaning import clean_text
from tf_adapters.data.files import check_labels
from tf_adapters.data.files import read_file
from tf_adapters.data.splits import split_records

MESSY = [
    "  Caf\u0065\u0301 \u200bnoir\x07\r\n\tok ",
    "ﬁne\u00a0print",
    "\ufeffbom",
    "",
    "tab\tand\nnewline",
]


def _decode(tensor):
    return [s.decode("utf-8") for s in np.asarray(tensor)]


def test_cleaning_normalizes_strips_and_collapses():
    assert _decode(clean_text(MESSY)) == [
        "Café noir ok",
        "fine print",
        "bom",
        "",
        "tab and newline",
    ]


def test_cleaning_is_idempotent():
    once = clean_text(MESSY)
    np.testing.assert_array_equal(clean_text(once), once)


def test_clean_records_filters_and_deduplicates():
    records = [{"text": t} for t in MESSY + ["Café   noir ok", "x" * 50]]
    kept, dropped = clean_records(
        records, ["text"], CleaningConfig(max_chars=40)
    )
    assert [r["text"] for r in kept] == [
        "Café noir ok",
        "fine print",
        "bom",
        "tab and newline",
    ]
    assert dropped == {"empty": 1, "length": 1, "duplicate": 1}


def test_splits_are_deterministic_and_disjoint():
    records = list(range(100))
    a = split_records(records, test=0.2, validation=10, seed=3)
    b = split_records(records, test=0.2, validation=10, seed=3)
    c = split_records(records, test=0.2, validation=10, seed=4)
    assert a == b and a != c
    assert [len(a[k]) for k in ("train", "validation", "test")] == [70, 10, 20]
    assert sorted(a["train"] + a["validation"] + a["test"]) == records
    with pytest.raises(ValueError, match="leave no training records"):
        split_records(records, test=60, validation=40)


def test_jsonl_csv_and_txt_files(tmp_path):
    (tmp_path / "d.jsonl").write_text(
        json.dumps({"text": "good", "label": "pos"})
        + "\n\n"
        + json.dumps({"text": "bad", "label": "neg", "extra": 1})
        + "\n"
    )
    assert read_file(str(tmp_path / "d.jsonl"), ["text", "label"]) == [
        {"text": "good", "label": "pos"},
        {"text": "bad", "label": "neg"},
    ]
    (tmp_path / "d.csv").write_text('text,label\n"a, b",pos\nc,neg\n')
    assert read_file(str(tmp_path / "d.csv"), ["text", "label"]) == [
        {"text": "a, b", "label": "pos"},
        {"text": "c", "label": "neg"},
    ]
    (tmp_path / "d.txt").write_text("line one\n\nline two\n")
    assert read_file(str(tmp_path / "d.txt"), ["text"]) == [
        {"text": "line one"},
        {"text": "line two"},
    ]


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.jsonl", b"  \n", r"empty.jsonl is empty"),
        (
            "bad.jsonl",
            b'{"text": "a", "label": "x"}\n{oops\n',
            r"bad.jsonl:2: not valid JSON",
        ),
        ("list.jsonl", b'["a"]\n', r"list.jsonl:1: a JSON array"),
        (
            "missing.jsonl",
            b'{"text": "a"}\n',
            r"missing.jsonl:1: missing field 'label' \(found \['text'\]\)",
        ),
        (
            "bytes.jsonl",
            b'{"text": "a", "label": "x"}\n\xff\xfe\n',
            r"bytes.jsonl:2: bytes that are not UTF-8",
        ),
        (
            "cols.csv",
            b"body,label\na,x\n",
            r"cols.csv:1: missing column 'text'",
        ),
        (
            "ragged.csv",
            b"text,label\na,x\nb\n",
            r"ragged.csv:3: 1 cells where the header has 2",
        ),
        ("data.parquet", b"PAR1", r"unsupported file type '.parquet'"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_file(str(tmp_path / name), ["text", "label"])


def test_missing_file_and_unknown_label(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl not found"):
        read_file(str(tmp_path / "nope.jsonl"), ["text"])
    records = [{"label": "pos"}, {"label": "meh"}]
    with pytest.raises(
        ValueError,
        match=r"f.jsonl: record 2 has label 'meh', outside the label set "
        r"\['neg', 'pos'\]",
    ):
        check_labels(records, "label", ["neg", "pos"], "f.jsonl")
