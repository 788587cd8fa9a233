"""Labelled text records for classification, from any supported source."""

import logging

from tf_adapters.data.builtin import BUILTIN
from tf_adapters.data.cleaning import clean_records
from tf_adapters.data.files import check_labels
from tf_adapters.data.files import read_file
from tf_adapters.data.records import tfds_records

log = logging.getLogger(__name__)


def load_classification_records(
    data, text_field="text", label_field="label", labels=None, cleaning=None
):
    """Loads, cleans and label-checks classification records.

    Args:
        data: str. `"sentiment"`, a `.jsonl`/`.csv` path, or `"tfds:NAME"`.
        text_field: str. The text field.
        label_field: str. The label field.
        labels: list of str. The label set; defaults to the source's own, or
            the sorted distinct labels of a file.
        cleaning: `CleaningConfig`. Defaults to `CleaningConfig()`.

    Returns:
        `(records, labels)`; each record has `text`, `label` and
        `label_index`.
    """
    if data in BUILTIN:
        build, fields, default_labels = BUILTIN[data]
        if default_labels is None:
            raise ValueError(
                f"Built-in dataset {data!r} has no labels; it is not a "
                "classification dataset."
            )
        records = build()
        text_field, label_field = fields
    elif data.startswith("tfds:"):
        records, names = tfds_records(data[5:], [text_field, label_field])
        default_labels = names.get(label_field)
    else:
        records = read_file(data, [text_field, label_field])
        default_labels = None
    records = [
        {"text": str(r[text_field]), "label": str(r[label_field])}
        for r in records
    ]
    if labels is None:
        labels = list(default_labels or sorted({r["label"] for r in records}))
    records, dropped = clean_records(records, ["text"], cleaning)
    log.info(
        "%s: %d records after cleaning (dropped: %s)",
        data,
        len(records),
        dropped,
    )
    if not records:
        raise ValueError(f"{data}: no records left after cleaning.")
    return check_labels(records, "label", labels, data), list(labels)
