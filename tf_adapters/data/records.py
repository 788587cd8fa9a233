"""Text records with named fields, from any supported source."""

import logging

from tf_adapters.data.builtin import BUILTIN
from tf_adapters.data.cleaning import clean_records
from tf_adapters.data.files import read_file

log = logging.getLogger(__name__)


def load_records(data, fields, cleaning=None):
    """Loads and cleans records holding the string `fields`.

    Args:
        data: str. A built-in dataset name (its own fields are mapped onto
            `fields` in order), a `.jsonl`/`.csv`/`.txt` path, or
            `"tfds:NAME"` (a TensorFlow Datasets name, split `train`).
        fields: list of str. The fields each record must hold.
        cleaning: `CleaningConfig`. Defaults to `CleaningConfig()`.

    Returns:
        A list of `{field: str}` dicts.
    """
    fields = list(fields)
    if data in BUILTIN:
        build, own, _ = BUILTIN[data]
        if len(own) < len(fields):
            raise ValueError(
                f"Built-in dataset {data!r} holds {list(own)}; this task "
                f"needs {len(fields)} fields ({fields}). Choose another "
                "--data."
            )
        records = [
            {
                field: str(r[key])
                for field, key in zip(fields, own, strict=False)
            }
            for r in build()
        ]
    elif data.startswith("tfds:"):
        records, _ = tfds_records(data[5:], fields)
    else:
        records = [
            {f: str(r[f]) for f in fields} for r in read_file(data, fields)
        ]
    records, dropped = clean_records(records, fields, cleaning)
    log.info(
        "%s: %d records after cleaning (dropped: %s)",
        data,
        len(records),
        dropped,
    )
    if not records:
        raise ValueError(f"{data}: no records left after cleaning.")
    return records


def tfds_records(name, fields, split="train"):
    """`{field: str}` records of a TensorFlow Datasets dataset (downloads
    if needed), and the class names of each `ClassLabel` field.

    A `ClassLabel` field's value is its class name (`"pos"`, not `1`), so
    records read the same whether a label came from TFDS or from a file.

    Returns:
        `(records, names)`: `names[field]` lists the classes of each
        `ClassLabel` field, in label order.
    """
    import tensorflow_datasets as tfds

    dataset, info = tfds.load(name, split=split, with_info=True)
    names = {
        f: list(info.features[f].names)
        for f in fields
        if f in info.features and hasattr(info.features[f], "names")
    }
    records = []
    for example in tfds.as_numpy(dataset):
        missing = [f for f in fields if f not in example]
        if missing:
            raise ValueError(
                f"tfds:{name} has no field(s) {missing}; it has "
                f"{sorted(example)}. Set the field options to match."
            )
        records.append(
            {f: _tfds_value(example[f], names.get(f)) for f in fields}
        )
    return records, names


def _tfds_value(value, names):
    if names is not None:
        return names[int(value)]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
