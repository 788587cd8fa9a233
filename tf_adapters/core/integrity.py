"""One loading discipline for every file a user hands us: whatever is wrong
with its content is a `CorruptFileError` that names the file, says what is
wrong and what to do; never a zip, JSON or numpy error from deep inside.
Weights files we wrote are verified against the SHA-256 their JSON records
(`check_sha256`; `npz_file.load_npz` reads them).

Example:
>>> import os, tempfile
>>> from tf_adapters.core import integrity
>>> path = os.path.join(tempfile.mkdtemp(), "meta.json")
>>> with open(path, "w") as f:
...     _ = f.write('{"rank": 4, "rank": 8}')
>>> try:
...     integrity.load_json(path, "a config", "Write it again")
... except integrity.CorruptFileError as e:
...     print(str(e).split(") ", 1)[1])
is not valid JSON (the key 'rank' appears twice in one object). Write it again.
"""

import hashlib
import json

_CHUNK = 1 << 20


class CorruptFileError(ValueError):
    """A file we read is damaged or not what it claims to be: truncated,
    altered, undecodable, or declaring sizes its bytes do not hold.

    Every reader of a file a user hands us (adapter checkpoints, training
    states, PEFT folders, Hugging Face and GGUF checkpoints, configs, data
    files) raises it for bad content, with a message that names the file,
    the problem and what to do. It is a `ValueError`.

    Args:
        message: str. The file, what is wrong with it and what to do
            (`corrupt(path, what, problem, advice)` writes it).

    Example:
    >>> import os, tempfile, tf_adapters as tfa
    >>> path = os.path.join(tempfile.mkdtemp(), "run.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("method: [lora")
    >>> try:
    ...     tfa.FinetuneConfig.from_file(path)
    ... except tfa.CorruptFileError as e:
    ...     print(str(e).startswith(path))
    True
    """


def corrupt(path, what, problem, advice):
    """The `CorruptFileError` for file `path` (a `what`, e.g. "adapter
    weights"): `"{path} ({what}) {problem}. {advice}."`."""
    return CorruptFileError(f"{path} ({what}) {problem}. {advice}.")


def sha256_file(path):
    """The hex SHA-256 of the file at `path`, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path, expected, what, advice):
    """Raises `CorruptFileError` unless the file's SHA-256 is `expected`
    (`None`: a file written before digests were recorded, not checked)."""
    if expected is None:
        return
    if not isinstance(expected, str) or sha256_file(path) != expected:
        raise corrupt(
            path,
            what,
            "does not match the SHA-256 recorded when it was written: the "
            "file was changed or damaged since",
            advice,
        )


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _DuplicateKey(f"the key {key!r} appears twice in one object")
    return result


def parse_json(text):
    """`json.loads(text)` refusing duplicate keys (which JSON leaves
    undefined and Python would silently resolve to the last); raises
    `ValueError` (or `RecursionError` for absurd nesting)."""
    return json.loads(text, object_pairs_hook=_unique_keys)


def load_json(path, what, advice, expect=dict):
    """The JSON value in file `path`, of type `expect` (`None`: any).

    Raises:
        CorruptFileError: for bytes that are not UTF-8 JSON, a key that
            appears twice in an object, nesting too deep to parse, or a
            value of another type; naming `path` and giving `advice`.
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        value = parse_json(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors.
        problem = "is nested too deeply" if isinstance(e, RecursionError) else e
        raise corrupt(
            path, what, f"is not valid JSON ({problem})", advice
        ) from None
    if expect is not None and not isinstance(value, expect):
        raise corrupt(
            path,
            what,
            f"holds a JSON {json_type(value)} where a JSON "
            f"{json_type(expect())} belongs",
            advice,
        )
    return value


def json_type(value):
    """The JSON name of the type of a parsed JSON `value` ("object")."""
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


_JSON_TYPES = [
    (bool, "boolean"),
    ((int, float), "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
]
