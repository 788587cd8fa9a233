"""Calibration after training: a bias per label on training examples the
run did not train on (`stages.calibrate`)."""

import types

import numpy as np
import pytest
import tensorflow as tf

from tf_adapters.data.encoding import Encoded
from tf_adapters.evaluation.calibration import fit_label_bias
from tf_adapters.pipeline import stages
from tf_adapters.pipeline.config import FinetuneConfig


def test_fit_label_bias_maximizes_the_likelihood():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    # Informative logits with a tilt toward class 2.
    logits = np.eye(3)[labels] * 2.0 + rng.normal(size=(300, 3))
    logits[:, 2] += 1.5
    bias = fit_label_bias(logits, labels)
    assert abs(bias.sum()) < 1e-9

    def loss(b):
        z = logits + b
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -np.mean(logp[np.arange(300), labels])

    # A minimum: every small move in any direction costs.
    for direction in np.vstack([np.eye(3), -np.eye(3)]):
        assert loss(bias + 1e-3 * direction) > loss(bias)
    assert loss(bias) < loss(np.zeros(3))
    assert bias[2] < bias[0] and bias[2] < bias[1]  # the tilt taken out
    # Two classes: the known closed case, balanced logits of one class
    # everywhere and labels half and half, needs the bias that cancels it.
    two = np.tile([0.0, 2.0], (10, 1))
    b = fit_label_bias(two, np.array([0, 1] * 5))
    np.testing.assert_allclose(b[1] - b[0], -2.0, atol=1e-8)


def test_fit_label_bias_needs_every_class():
    with pytest.raises(ValueError, match=r"classes \[1\] have none"):
        fit_label_bias(np.zeros((4, 2)), np.array([0, 0, 0, 0]))


def test_calibration_records_are_the_ones_no_batch_held():
    n = 40
    ids = np.arange(n)[:, None] + 1
    train = Encoded(
        {"token_ids": ids, "padding_mask": np.ones_like(ids)},
        np.arange(n) % 2,
    )
    config = FinetuneConfig(steps=3, batch_size=4, seed=7, calibration_size=10)
    run = types.SimpleNamespace(
        config=config,
        task=types.SimpleNamespace(train=train),
        splits={"train": [{"row": i} for i in range(n)]},
    )
    records = stages.calibration_records(run)
    held = np.concatenate(
        [
            b[0]["token_ids"].numpy()[:, 0] - 1
            for b in train.dataset(
                4, shuffle_seed=7, repeat=True, dynamic_padding=True
            ).take(3)
        ]
    )
    rows = [r["row"] for r in records]
    assert len(rows) == 10 and not set(rows) & set(held.tolist())
    # In the order of the first shuffled pass, after the 12 trained on.
    first = tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype="int64"), seed=tf.constant([7, 0], "int64")
    ).numpy()
    assert rows == list(first[12:22])
    # Every example trained on: nothing left to calibrate on, and the
    # stage says so instead of fitting on examples the run has seen.
    run.config = FinetuneConfig(steps=10, batch_size=4, seed=7)
    assert stages.calibration_records(run) == []
    run.task.calibrate = None  # not called
    stages.calibrate(run)
    assert run.calibration["examples"] == 0
    assert run.calibration["label_bias"] is None
    assert "every training example" in run.calibration["skipped"]


def test_a_task_without_classes_is_not_calibrated():
    assert FinetuneConfig(task="causal_lm", data="x.txt").calibration_size == 0
    with pytest.raises(ValueError, match="calibration_size.*no classes"):
        FinetuneConfig(task="causal_lm", data="x.txt", calibration_size=8)
    with pytest.raises(ValueError, match="calibration_size"):
        FinetuneConfig(calibration_size=-1)


@pytest.mark.parametrize("head", ["label_words", "linear"])
def test_classification_calibrates_either_head(head):
    import tiny_models

    from tf_adapters.tasks.classification import ClassificationTask

    lm = tiny_models.gpt2_causal_lm()
    task = ClassificationTask()
    task.labels = ["air", "plane"]
    config = FinetuneConfig(
        head=head, template="{text} is", sequence_length=8, batch_size=4
    )
    trainer = task.build_model(lm, config)
    records = [
        {"text": text, "label_index": i % 2}
        for i, text in enumerate([" airplane", " plane air", " the air"] * 3)
    ]
    trainer(
        {
            "token_ids": np.ones((1, 4), "int32"),
            "padding_mask": np.ones((1, 4), "int32"),
        }
    )
    shifted = trainer.head.bias if head == "linear" else trainer.label_bias
    before = np.asarray(shifted).copy()
    found = task.calibrate(trainer, lm, records, config)
    assert found["examples"] == 9 and len(found["label_bias"]) == 2
    np.testing.assert_allclose(
        np.asarray(shifted) - before, found["label_bias"], atol=1e-5
    )
    # One class only: nothing fitted, nothing changed, and it says why.
    one = [dict(r, label_index=0) for r in records]
    again = np.asarray(shifted).copy()
    found = task.calibrate(trainer, lm, one, config)
    assert found["label_bias"] is None and "'plane'" in found["skipped"]
    np.testing.assert_array_equal(np.asarray(shifted), again)
