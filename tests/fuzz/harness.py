"""Runs one fuzzed reader over many mutated inputs and counts outcomes.

Every case starts from the seed files in one reused folder, writes the
files the mutation changed, calls the reader under a per-case time limit
(`signal.setitimer`, so a reader stuck in a Python loop is stopped) and
sorts the outcome:

- accepted: the mutation happened to be harmless;
- CorruptFileError: naming a file of the case;
- refused: a documented refusal of the reader (`Target.refusals`) naming
  a file of the case;
- other: anything else, including a `CorruptFileError` that names no file
  and a case over the time limit. Must be zero.
"""

import dataclasses
import os
import signal
import tempfile
import threading
import time

from fuzz.mutate import Mutator

from tf_adapters import CorruptFileError

CASE_LIMIT_S = 2.0
# Mutated inputs per reader in the test suite (issue 20: at least 10,000).
CASES = 10_000


class CaseTimeout(Exception):
    """A case ran past `CASE_LIMIT_S`."""


@dataclasses.dataclass
class Outcome:
    reader: str
    inputs: int = 0
    accepted: int = 0
    corrupt: int = 0
    refused: int = 0
    other: int = 0
    max_seconds: float = 0.0
    examples: list = dataclasses.field(default_factory=list)

    def record(self, kind, seconds, example=None):
        self.inputs += 1
        setattr(self, kind, getattr(self, kind) + 1)
        self.max_seconds = max(self.max_seconds, seconds)
        if example is not None and len(self.examples) < 5:
            self.examples.append(example)


def _alarm(signum, frame):
    raise CaseTimeout()


def _classify(target, error, folder):
    if error is None:
        return "accepted"
    if isinstance(error, CaseTimeout):
        return "other"
    names_file = folder in str(error)
    if isinstance(error, CorruptFileError):
        return "corrupt" if names_file else "other"
    if target.refusals and isinstance(error, target.refusals):
        return "refused" if names_file else "other"
    return "other"


def _write(folder, files):
    """Writes `files` in place, then cuts each to its length: opening with
    truncation makes ext4 flush the file (its `auto_da_alloc`), a
    millisecond a case."""
    for name, data in files.items():
        path = os.path.join(folder, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)


def run(target, count, seed=0):
    """`Outcome` of `count` mutated inputs of `target` (seeded)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        return _run(target, count, seed, folder)


def _run(target, count, seed, folder):
    seeds = target.seeds()
    for name in seeds:
        os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
    _write(folder, seeds)
    mutator = Mutator(seed)
    outcome = Outcome(target.name)
    timed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _alarm) if timed else None
    try:
        for index in range(count):
            changed = target.mutate(mutator, seeds)
            _write(folder, changed)
            error = None
            start = time.perf_counter()
            try:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
                target.read(folder, changed)
            except Exception as e:  # sorted below; anything may come
                error = e
            finally:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            seconds = time.perf_counter() - start
            kind = _classify(target, error, folder)
            example = None
            if kind == "other":
                example = (index, sorted(changed), repr(error)[:300])
            outcome.record(kind, seconds, example)
            _write(folder, {name: seeds[name] for name in changed})
    finally:
        if timed:
            signal.signal(signal.SIGALRM, previous)
    return outcome


HEADER = (
    f"{'reader':<22}{'inputs':>8}{'accepted':>10}{'CorruptFileError':>18}"
    f"{'refused':>9}{'other':>7}{'max s/case':>12}"
)


def row(outcome):
    o = outcome
    return (
        f"{o.reader:<22}{o.inputs:>8}{o.accepted:>10}{o.corrupt:>18}"
        f"{o.refused:>9}{o.other:>7}{o.max_seconds:>12.4f}"
    )


def check(target, count=CASES, seed=0):
    """Runs `target` and fails unless every outcome was documented, no
    case came near the time limit, and the damage reached the reader's
    own checks (a quarter of the cases or more refused by name)."""
    outcome = run(target, count, seed)
    assert outcome.other == 0, (
        f"{target.name}: {outcome.other} undocumented outcomes, e.g. "
        f"(case, files, error): {outcome.examples}"
    )
    assert outcome.inputs == count
    assert outcome.max_seconds < CASE_LIMIT_S / 2, row(outcome)
    assert outcome.corrupt + outcome.refused >= count // 4, row(outcome)
    return outcome
