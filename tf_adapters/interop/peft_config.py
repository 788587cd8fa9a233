"""A PEFT `adapter_config.json`, read and checked field by field.

Every field tf_adapters reads is checked for its JSON type (and regular
expressions for validity) before any of it is used, so a damaged or
hand-edited file is a `CorruptFileError` naming the file and the field,
never a `TypeError` from deep inside the reader.

Example:
>>> import json, os, tempfile
>>> from tf_adapters.interop.peft_config import read_peft_config
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "adapter_config.json"), "w") as f:
...     json.dump({"peft_type": "LORA", "r": "eight"}, f)
>>> try:
...     read_peft_config(folder)
... except ValueError as e:
...     print("has r='eight', where an integer >= 1 belongs" in str(e))
True
"""

import math
import os
import re
import warnings

from tf_adapters.core.integrity import corrupt
from tf_adapters.core.integrity import load_json

CONFIG_FILE = "adapter_config.json"
METHODS = ("LORA", "IA3", "PROMPT_TUNING")
WHAT = "PEFT adapter config"
ADVICE = "Save the adapter again with PEFT, or copy the folder again"


def _positive_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _number(v):
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
    )


def _positive(v):
    return _number(v) and v > 0


def _regex(template):
    """A check for strings that compile as regular expressions once put
    into `template` (how the reader uses them)."""

    def valid(v):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. "possible nested set"
                re.compile(template.format(v))
        except (re.error, TypeError, RecursionError, OverflowError):
            return False
        return isinstance(v, str)

    return valid


def _strings(item):
    def valid(v):
        return (
            v is None or item(v) or (isinstance(v, list) and all(map(item, v)))
        )

    return valid


def _layer_indices(v):
    return v is None or (
        isinstance(v, (int, list))
        and not isinstance(v, bool)
        and all(
            isinstance(i, int) and not isinstance(i, bool)
            for i in (v if isinstance(v, list) else [v])
        )
    )


def _pattern_map(check):
    key = _regex(r"(.*\.)?({})$")

    def valid(v):
        return v is None or (
            isinstance(v, dict)
            and all(key(k) and check(x) for k, x in v.items())
        )

    return valid


# field → (check, what it must be)
_FIELDS = {
    "r": (_positive_int, "an integer >= 1"),
    "lora_alpha": (_positive, "a number > 0"),
    "lora_dropout": (
        lambda v: v is None or (_number(v) and 0 <= v <= 0.99),
        "a number in [0, 0.99]",
    ),
    "use_rslora": (lambda v: v is None or isinstance(v, bool), "true/false"),
    "use_dora": (lambda v: v is None or isinstance(v, bool), "true/false"),
    "bias": (lambda v: v is None or isinstance(v, str), "a string"),
    "init_lora_weights": (
        lambda v: v is None or isinstance(v, (bool, str)),
        "true/false or a string",
    ),
    "rank_pattern": (_pattern_map(_positive_int), "regex → integer >= 1"),
    "alpha_pattern": (_pattern_map(_positive), "regex → number > 0"),
    "target_modules": (_strings(_regex("{}")), "a regex or a list of names"),
    "layers_pattern": (
        _strings(_regex(r".*\.{}\.(\d+)\.")),
        "a name or a list of names",
    ),
    "layers_to_transform": (_layer_indices, "an integer or a list of integers"),
    "num_virtual_tokens": (_positive_int, "an integer >= 1"),
    "num_transformer_submodules": (
        lambda v: v is None or _positive_int(v),
        "an integer >= 1",
    ),
}


def read_peft_config(folder):
    """The checked `adapter_config.json` of PEFT folder `folder`.

    Raises:
        CorruptFileError: the file is not a JSON object with a
            `peft_type`, or a field tf_adapters reads has the wrong type.
        ValueError: a PEFT method tf_adapters does not read.
    """
    path = os.path.join(str(folder), CONFIG_FILE)
    meta = load_json(path, WHAT, ADVICE)
    if "peft_type" not in meta:
        raise corrupt(path, WHAT, "lacks `peft_type`", ADVICE)
    method = meta["peft_type"]
    if method not in METHODS:
        raise ValueError(
            f"{path}: PEFT method {method!r} is not supported; "
            f"tf_adapters reads {list(METHODS)}."
        )
    for field, (check, expected) in _FIELDS.items():
        if field in meta and not check(meta[field]):
            raise corrupt(
                path,
                WHAT,
                f"has {field}={meta[field]!r}, where {expected} belongs",
                ADVICE,
            )
    return meta
