"""Every bad data file is a `CorruptFileError` (a `ValueError`) naming the
file and line (issue 20), including what the `csv` and `json` modules
would raise themselves: oversized or unterminated CSV cells, JSON nested
too deeply, a key given twice."""

import csv

import pytest

from tf_adapters import CorruptFileError
from tf_adapters.data.files import read_file

FIELDS = ["text", "label"]


@pytest.mark.parametrize(
    "name, data, match",
    [
        (
            "big.csv",
            b"text,label\n" + b"x" * (csv.field_size_limit() + 1) + b",a\n",
            r"big.csv:\d+: not valid CSV \(field larger than field limit",
        ),
        (
            "cr.csv",
            b"text,label\nab\rcd,a\n",
            r"cr.csv:\d+: not valid CSV",
        ),
        (
            "twice.jsonl",
            b'{"text": "a", "label": "x", "label": "y"}\n',
            "twice.jsonl:1: not valid JSON .the key 'label' appears twice",
        ),
        (
            "deep.jsonl",
            b'{"text": ' + b"[" * 100_000 + b"\n",
            "deep.jsonl:1: not valid JSON",
        ),
        ("list.jsonl", b"[1, 2]\n", "list.jsonl:1: a JSON array, not an obj"),
        ("bool.jsonl", b'{"text": true, "label": "a"}\n', "not boolean"),
        ("bytes.txt", b"ok\n\xff\n", r"bytes.txt:2: bytes that are not UTF-8"),
        ("empty.csv", b"\n\n", "empty.csv is empty"),
    ],
)
def test_bad_data_files_are_corrupt_file_errors(tmp_path, name, data, match):
    path = tmp_path / name
    path.write_bytes(data)
    fields = ["text"] if name.endswith(".txt") else FIELDS
    with pytest.raises(CorruptFileError, match=match):
        read_file(str(path), fields)
