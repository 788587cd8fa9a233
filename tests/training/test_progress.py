"""Progress lines when output is not a terminal: a line every few steps
with the step, loss, rate and time left; the first step (tracing and
compiling) apart; evaluation batches too."""

import logging
import re

import finetune_runs
import pytest

from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.pipeline.finetune import run_finetune
from tf_adapters.training.progress import Progress
from tf_adapters.training.progress import format_seconds


def test_rate_and_time_left_leave_the_first_step_out():
    now, lines = [0.0], []
    progress = Progress(
        "training", 21, every=5, log_fn=lines.append, clock=lambda: now[0]
    )
    for step in range(1, 22):
        now[0] += 30.0 if step == 1 else 0.5  # the first step compiles
        progress.update(step, loss=1.0)
    assert [int(re.search(r"step (\d+)/", s).group(1)) for s in lines] == [
        1, 5, 10, 15, 20, 21,
    ]  # fmt: skip
    assert "in 30 s (tracing and compiling included)" in lines[0]
    # 4 steps in 2 s after the first: 2 step/s, 16 steps (8 s) left.
    assert "2.00 step/s; 8 s left" in lines[1]
    assert lines[-1].endswith("done in 40 s")


def test_a_resumed_run_counts_from_its_step():
    lines = []
    progress = Progress("training", 12, every=3, start=6, log_fn=lines.append)
    for step in range(7, 13):
        progress.update(step)
    assert [re.search(r"step (\d+)/", s).group(1) for s in lines] == [
        "7", "9", "12",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "0 s"),
        (59.6, "1 min 00 s"),
        (600, "10 min 00 s"),
        (7200, "2 h 00 min"),
    ],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_a_finetune_run_logs_training_and_evaluation_progress(
    tmp_path, tiny_preset, caplog
):
    # Under pytest stdout is captured, not a terminal.
    options = finetune_runs.options(
        tmp_path, tiny_preset, "run", checkpoint_every=12, evaluate_base=True
    )
    with caplog.at_level(logging.INFO, logger="tf_adapters.progress"):
        run_finetune(FinetuneConfig(**options))
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "tf_adapters.progress"
    ]
    training = [s for s in lines if s.startswith("training: ")]
    assert training[0].startswith("training: step 1/12 in ")
    assert re.fullmatch(
        r"training: step 12/12; loss \d\.\d{4}; [\d.]+ step/s; done in .+",
        training[-1],
    )
    assert 3 <= len(training) <= 12
    # 6 test examples in batches of 4: base and adapted model.
    evaluating = [s for s in lines if s.startswith("evaluating (test)")]
    assert [s.split(";")[0].split(" in ")[0] for s in evaluating] == [
        "evaluating (test): batch 1/2",
        "evaluating (test): batch 2/2",
    ] * 2
