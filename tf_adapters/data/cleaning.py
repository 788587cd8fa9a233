"""Text cleaning as TensorFlow ops, so it runs inside tf.data pipelines.

`clean_text` is idempotent: cleaning clean text changes nothing.
"""

import dataclasses

import tensorflow as tf
import tensorflow_text as tf_text

# Control characters except tab/newline, plus zero-width and BOM characters.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{200b}-\x{200d}\x{feff}]"


@dataclasses.dataclass
class CleaningConfig:
    """How texts are cleaned.

    Args:
        normalization: str. Unicode normalization form (`"NFKC"`, `"NFC"`,
            ...) or `None`. Defaults to `"NFKC"`.
        strip_control: bool. Remove control and zero-width characters.
            Defaults to `True`.
        collapse_whitespace: bool. Turn every run of whitespace (newlines
            included) into one space and trim the ends. Defaults to `True`.
        deduplicate: bool. Drop exact duplicates after cleaning. Defaults to
            `True`.
        min_chars: int. Drop texts shorter than this. Defaults to `1`.
        max_chars: int. Drop texts longer than this (`None`: no limit).
    """

    normalization: str | None = "NFKC"
    strip_control: bool = True
    collapse_whitespace: bool = True
    deduplicate: bool = True
    min_chars: int = 1
    max_chars: int | None = None


def clean_text(texts, config=None):
    """Cleans a string tensor (any shape) with TensorFlow ops.

    Example:
    >>> from tf_adapters.data.cleaning import clean_text
    >>> out = clean_text(["  Caf\\u00e9\\u200b  \\n\\tnoir\\x07 "])
    >>> out.numpy()[0].decode()
    'Café noir'
    """
    config = config or CleaningConfig()
    texts = tf.convert_to_tensor(texts, tf.string)
    # Control and zero-width characters go first: removed after
    # normalizing, they could join characters that normalization would then
    # compose ("e", U+200B, U+0301), and cleaning would not be idempotent.
    if config.strip_control:
        texts = tf.strings.regex_replace(texts, _CONTROL, "")
    if config.normalization:
        texts = tf_text.normalize_utf8(texts, config.normalization)
    if config.collapse_whitespace:
        texts = tf.strings.regex_replace(texts, r"\s+", " ")
        texts = tf.strings.strip(texts)
    return texts


def clean_records(records, fields, config=None):
    """Cleans `fields` of every record; filters and de-duplicates.

    Returns the kept records (new dicts) and a count of what was dropped.
    """
    config = config or CleaningConfig()
    if not records:
        return [], {"empty": 0, "length": 0, "duplicate": 0}
    cleaned = {
        field: [
            s.decode("utf-8")
            for s in clean_text([r[field] for r in records], config).numpy()
        ]
        for field in fields
    }
    kept, seen = [], set()
    dropped = {"empty": 0, "length": 0, "duplicate": 0}
    for i, record in enumerate(records):
        record = dict(record, **{f: cleaned[f][i] for f in fields})
        text = " ".join(record[f] for f in fields)
        if len(text) < max(config.min_chars, 1):
            dropped["empty"] += 1
            continue
        if config.max_chars is not None and len(text) > config.max_chars:
            dropped["length"] += 1
            continue
        key = tuple(record[f] for f in fields)
        if config.deduplicate and key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(record)
    return kept, dropped
