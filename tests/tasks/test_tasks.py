"""Each task end to end on a tiny GPT-2 preset, and its preprocessing."""

import json
import os

import numpy as np
import pytest

from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.pipeline.evaluate import run_evaluate
from tf_adapters.pipeline.finetune import run_finetune
from tf_adapters.tasks import get_task

WORDS = [" airplane", " at", " airport", " the", " air", " plane", " port"]


def _texts(n, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(WORDS, 6)) + f" {i}" for i in range(n)]


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def _config(tmp_path, preset, **kw):
    options = dict(
        model=preset,
        steps=2,
        batch_size=4,
        sequence_length=16,
        test_size=6,
        max_new_tokens=4,
        jit_compile=False,
        output=str(tmp_path / "run"),
        export_dir=str(tmp_path / "saved_models"),
        # Exporting a causal LM is tests/export/test_causal_lm_export.py's;
        # the classification test below exports from `finetune`.
        export=False,
        template="{text} is",
    )
    options.update(kw)
    return FinetuneConfig(**options)


def test_causal_lm_task(tmp_path, tiny_preset):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(_texts(40)))
    report = run_finetune(
        _config(
            tmp_path,
            tiny_preset,
            task="causal_lm",
            data=str(data),
            template="{text}",
        )
    )
    for side in ("base", "adapted"):
        ppl = report[side]["perplexity"]
        # A random model over a 43-token vocabulary: near-uniform.
        assert 1 < ppl < 200, ppl
        assert report[side]["loss"] == pytest.approx(np.log(ppl))
    assert report["metric"] == "perplexity"
    assert not report["higher_is_better"]


def _qa_rows(n):
    texts = _texts(n)
    return [{"prompt": t, "response": " airplane at airport"} for t in texts]


def test_prompt_response_loss_mask_covers_the_response(tiny_preset):
    import keras_hub

    model = keras_hub.models.CausalLM.from_preset(tiny_preset)
    config = FinetuneConfig(
        model=tiny_preset,
        task="prompt_response",
        data="unused.jsonl",
        template="{text} is",
        sequence_length=32,
    )
    task = get_task("prompt_response")
    rows = _qa_rows(3)
    task.prepare(model, {"train": rows, "test": rows}, config)
    tokenizer = model.preprocessor.tokenizer
    for i, row in enumerate(rows):
        prompt = np.asarray(tokenizer(row["prompt"] + " is")).tolist()
        response = np.asarray(tokenizer(row["response"])).tolist()
        weights = task.train.sample_weight[i]
        # Position t predicts token t + 1: the weighted targets are exactly
        # the response tokens and the end token.
        assert weights.sum() == len(response) + 1
        start = len(prompt) - 1
        assert weights[:start].sum() == 0
        assert weights[start : start + len(response) + 1].all()
        targets = task.train.y[i][start : start + len(response) + 1]
        assert targets.tolist() == response + [tokenizer.end_token_id]
        assert task.answers["test"]["prompt_ids"][i] == prompt


def test_prompt_response_task(tmp_path, tiny_preset):
    data = _jsonl(tmp_path / "qa.jsonl", _qa_rows(30))
    report = run_finetune(
        _config(tmp_path, tiny_preset, task="prompt_response", data=data)
    )
    for side in ("base", "adapted"):
        metrics = report[side]
        for key in ("token_f1", "exact_match", "rouge_l"):
            assert 0 <= metrics[key] <= 1
        assert metrics["response_perplexity"] > 1
        assert len(metrics["examples"]) == 5
    # The adapter learned the one answer's tokens: its loss went down.
    assert report["adapted"]["response_loss"] < report["base"]["response_loss"]


def test_translation_task_and_evaluate(tmp_path, tiny_preset):
    rows = [
        {"source": t, "target": t.replace("air", "plane")} for t in _texts(30)
    ]
    data = _jsonl(tmp_path / "pairs.jsonl", rows)
    config = _config(
        tmp_path,
        tiny_preset,
        task="translation",
        data=data,
        template="{source_language} {text} {target_language}",
        source_language=" air",
        target_language=" plane",
    )
    report = run_finetune(config)
    assert set(report["adapted"]) >= {"bleu", "rouge_l"}
    assert 0 <= report["adapted"]["bleu"] <= 1
    # `evaluate` on the saved adapter reproduces the run's test metrics.
    again = run_evaluate(config, adapter=report["checkpoint"])
    for key in ("bleu", "rouge_l", "response_perplexity"):
        assert again[key] == pytest.approx(report["adapted"][key], abs=1e-5)


def test_translation_needs_data():
    with pytest.raises(ValueError, match="has no built-in data; pass --data"):
        FinetuneConfig(task="translation")


def _labelled(tmp_path):
    rows = [
        {"text": t, "label": "air" if i % 2 else "plane"}
        for i, t in enumerate(_texts(40))
    ]
    return _jsonl(tmp_path / "labels.jsonl", rows)


@pytest.mark.parametrize("method", ["linear_probe", "full", "lora"])
def test_classification_heads_and_methods(tmp_path, tiny_preset, method):
    config = _config(
        tmp_path,
        tiny_preset,
        data=_labelled(tmp_path),
        method=method,
        head="linear",
        labels=["air", "plane"],
        export=True,
        export_name="tiny",
    )
    report = run_finetune(config)
    assert report["adapted"]["count"] == 6
    assert report["saved_model"].endswith(os.path.join("tiny", "1"))
    total = report["total_params"]
    if method == "linear_probe":
        assert report["trainable_params"] == 8 * 2 + 2  # the head alone
    elif method == "full":
        assert report["trainable_params"] == total
    weights = os.path.join(config.output, "weights")
    again = run_evaluate(
        config,
        adapter=(report["checkpoint"] if method == "lora" else None),
        weights=weights,
    )
    assert again["accuracy"] == pytest.approx(report["adapted"]["accuracy"])
    np.testing.assert_array_equal(
        again["confusion_matrix"], report["adapted"]["confusion_matrix"]
    )


def test_l2sp_and_shared_weights_in_finetune(tmp_path, tiny_preset):
    data = _labelled(tmp_path)
    plain = run_finetune(
        _config(
            tmp_path,
            tiny_preset,
            data=data,
            labels=["air", "plane"],
            export=False,
        )
    )
    shared = run_finetune(
        _config(
            tmp_path,
            tiny_preset,
            data=data,
            labels=["air", "plane"],
            export=False,
            share_weights=True,
            l2sp=0.5,
        )
    )
    # Two transformer layers share one adapter: half the parameters.
    assert shared["trainable_params"] * 2 == plain["trainable_params"]
    assert shared["l2sp"] == 0.5


def test_causal_lm_streams_a_text_file(tmp_path, tiny_preset):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(_texts(60)))
    report = run_finetune(
        _config(
            tmp_path,
            tiny_preset,
            task="causal_lm",
            data=str(data),
            template="{text}",
            stream=True,
            test_size=10,
        )
    )
    assert report["test_examples"] == 10
    assert 1 < report["adapted"]["perplexity"] < 200
    # The test split is the first ten (cleaned) lines.
    from tf_adapters.tasks import get_task

    config = _config(
        tmp_path,
        tiny_preset,
        task="causal_lm",
        data=str(data),
        template="{text}",
        stream=True,
        test_size=10,
    )
    task = get_task("causal_lm")
    splits = task.split(task.load(config), config)
    assert [r["text"] for r in splits["test"]] == [
        t.strip() for t in _texts(60)[:10]
    ]
    assert splits["train"] == []


def test_classification_scores_test_texts_at_the_evaluation_length(
    tmp_path, tiny_preset
):
    from tf_adapters.models.loading import load_base

    model = load_base(tiny_preset)
    config = _config(tmp_path, tiny_preset, data=_labelled(tmp_path))
    task = get_task("classification")
    splits = task.split(task.load(config), config)

    def prepared(**options):
        cfg = _config(tmp_path, tiny_preset, data=config.data, **options)
        truncated = task.prepare(model, splits, cfg)
        return truncated, task.train.lengths().max(), task.test.lengths()

    # 16 tokens cut every text (6 words, a number, " is"); 48 cut none.
    truncated, train_longest, test_lengths = prepared(
        sequence_length=8, eval_sequence_length=48
    )
    assert train_longest == 8 and test_lengths.max() > 8
    assert truncated["test"] == 0 and truncated["train"] > 0
    cut, _, cut_lengths = prepared(sequence_length=8, eval_sequence_length=8)
    assert cut_lengths.max() == 8 and cut["test"] == len(splits["test"])
    # Unset: classification's 128, at most the model's 64 positions.
    cfg = _config(tmp_path, tiny_preset, data=config.data, sequence_length=8)
    assert cfg.eval_sequence_length == 128
    task.prepare(model, splits, cfg)
    assert task.test.x["token_ids"].shape[1] == 64


def test_classification_puts_sorted_predictions_back_in_place():
    from types import SimpleNamespace

    from tf_adapters.data.encoding import Encoded
    from tf_adapters.tasks.classification import ClassificationTask

    lengths = [5, 2, 7, 3, 6, 1, 4, 8]
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    ids = np.zeros((8, 8), "int32")
    mask = np.zeros((8, 8), "int32")
    for i, length in enumerate(lengths):
        ids[i, :length] = 2 * i + labels[i]  # its label in each id's parity
        mask[i, :length] = 1
    seen_widths = []

    class Trainer:  # predicts each row's label from its ids, eagerly
        run_eagerly = True

        def predict(self, data, verbose=None, callbacks=None):
            out = []
            for batch in data:
                first = batch[0]["token_ids"].numpy()[:, 0]
                seen_widths.append(batch[0]["token_ids"].shape[1])
                out.append(np.stack([first % 2 == 0, first % 2 == 1], -1))
            return np.concatenate(out).astype("float32")

    task = ClassificationTask()
    task.labels = ["a", "b"]
    task.test = Encoded({"token_ids": ids, "padding_mask": mask}, labels)
    for cut in (True, False):
        config = SimpleNamespace(dynamic_padding=cut, batch_size=3)
        metrics = task.evaluate(Trainer(), None, config)
        assert metrics["accuracy"] == 1.0, cut
    # Sorted by length, cut to each batch's longest; then full width.
    assert seen_widths == [3, 6, 8, 8, 8, 8]
