"""Reading JSONL / CSV / TXT files into records, with errors that name the
file and line and say what to do.

Bad content (bytes that are not UTF-8, a line that is not one JSON object
or repeats a key, a CSV row of the wrong width or a cell beyond the CSV
module's limit, a missing field) is a `CorruptFileError`, a `ValueError`.
"""

import csv
import io
import os

from tf_adapters.core.integrity import CorruptFileError
from tf_adapters.core.integrity import json_type
from tf_adapters.core.integrity import parse_json


def _lines(path):
    """Yields (line number, decoded line), reading the file lazily; fails on
    the first bad byte, or at the end if the file held no text."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Data file {path} not found.")
    any_text = False
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                text = line.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError as e:
                raise CorruptFileError(
                    f"{path}:{number}: bytes that are not UTF-8 ({e.reason} "
                    f"at byte {e.start}); re-save the file as UTF-8."
                ) from None
            any_text = any_text or bool(text.strip())
            yield number, text
    if not any_text:
        raise CorruptFileError(
            f"{path} is empty; it must hold at least one record."
        )


def _check_fields(path, number, record, fields):
    for field in fields:
        value = record.get(field)
        if value is None:
            raise CorruptFileError(
                f"{path}:{number}: missing field {field!r} (found "
                f"{sorted(record)}); add it or choose the field names with "
                "the --text-field / --label-field options."
            )
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise CorruptFileError(
                f"{path}:{number}: field {field!r} must be a string or a "
                f"number, not {json_type(value)}."
            )


def read_jsonl(path, fields):
    """One JSON object per line; blank lines are skipped."""
    records = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except (ValueError, RecursionError) as e:
            raise CorruptFileError(
                f"{path}:{number}: not valid JSON ({getattr(e, 'msg', e)}); "
                "each line must be one JSON object, each key once."
            ) from None
        if not isinstance(record, dict):
            raise CorruptFileError(
                f"{path}:{number}: a JSON {json_type(record)}, not an "
                "object; each line must be one JSON object."
            )
        _check_fields(path, number, record, fields)
        records.append({f: record[f] for f in fields})
    return records


def read_csv(path, fields):
    """A CSV file with a header row naming the fields."""
    text = "\n".join(line for _, line in _lines(path))
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _csv_records(path, reader, fields)
    except csv.Error as e:
        raise CorruptFileError(
            f"{path}:{reader.line_num}: not valid CSV ({e}); quote cells "
            "that hold commas, quotes or line breaks."
        ) from None


def _csv_records(path, reader, fields):
    header = reader.fieldnames or []
    missing = [f for f in fields if f not in header]
    if missing:
        raise CorruptFileError(
            f"{path}:1: missing column {missing[0]!r} in the header "
            f"{header}; rename the column or choose the field names with "
            "the --text-field / --label-field options."
        )
    records = []
    for row in reader:
        number = reader.line_num
        if None in row or any(row[f] is None for f in fields):
            cells = sum(v is not None for k, v in row.items() if k is not None)
            cells += len(row.get(None, []))
            raise CorruptFileError(
                f"{path}:{number}: {cells} cells where the header has "
                f"{len(header)}; quote cells that hold commas."
            )
        records.append({f: row[f] for f in fields})
    return records


def read_txt(path, field="text"):
    """One record per non-blank line."""
    return [{field: line} for _, line in _lines(path) if line.strip()]


READERS = {".jsonl": read_jsonl, ".json": read_jsonl, ".csv": read_csv}


def read_file(path, fields):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".txt":
        if list(fields) != ["text"]:
            raise ValueError(
                f"{path}: a .txt file holds plain text (one record per line) "
                f"and cannot supply fields {list(fields)}; use JSONL or CSV."
            )
        return read_txt(path)
    if ext not in READERS:
        raise ValueError(
            f"{path}: unsupported file type {ext!r}; use .jsonl, .csv or .txt."
        )
    return READERS[ext](path, fields)


def check_labels(records, field, labels, source):
    """Maps label values to indices; unknown labels name their record."""
    index = {str(label): i for i, label in enumerate(labels)}
    for number, record in enumerate(records, start=1):
        value = str(record[field])
        if value not in index:
            raise ValueError(
                f"{source}: record {number} has label {value!r}, outside the "
                f"label set {list(index)}; fix the record or pass --labels."
            )
        record["label_index"] = index[value]
    return records
