"""Fuzzing the readers of weights files we write (issue 20): adapter
checkpoints, training states and keras-hub `.lora.h5` files, 10,000
mutated versions of a real file each; only `CorruptFileError` (or a
documented refusal naming the file) may come out, each case in bounded
time."""

import pytest
from fuzz import harness
from fuzz import targets


@pytest.mark.parametrize(
    "name", ["adapter checkpoint", "training state", "keras-hub .lora.h5"]
)
def test_mutated_files_raise_only_documented_errors(name):
    harness.check(targets.TARGETS[name])
