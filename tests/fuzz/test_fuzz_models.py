"""Fuzzing the readers of other tools' model files (issue 20): PEFT
adapter folders, Hugging Face safetensors checkpoints (single and
sharded) and GGUF models, 10,000 mutated versions of a real file each;
only `CorruptFileError` (or a documented refusal naming the file) may
come out, each case in bounded time."""

import pytest
from fuzz import harness
from fuzz import targets


@pytest.mark.parametrize("name", ["PEFT folder", "HF safetensors", "GGUF"])
def test_mutated_files_raise_only_documented_errors(name):
    harness.check(targets.TARGETS[name])
