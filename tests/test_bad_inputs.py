"""The bad-input matrix: each bad input fails with an error that names the
input and says what to do, and leaves what the user had untouched.

(Corrupt, foreign and pickled adapter checkpoints are covered in
tests/checkpoint; export onto an existing version in tests/export.)
"""

import json
import os

import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.cli.main import main
from tf_adapters.data.classification import load_classification_records
from tf_adapters.data.records import load_records
from tf_adapters.pipeline.config import FinetuneConfig


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"rnak": 4}, ValueError, r"unknown option\(s\) \['rnak'\]"),
        ({"steps": "5"}, TypeError, r"`steps` must be int"),
        ({"labels": "pos"}, TypeError, r"`labels` must be a list of str"),
        ({"export": "yes"}, TypeError, r"`export` must be bool"),
        ({"rank": 0}, ValueError, r"`rank` must be >= 1"),
        ({"rank": -3}, ValueError, r"`rank` must be >= 1"),
        ({"learning_rate": 0}, ValueError, r"`learning_rate` must be > 0"),
        ({"learning_rate": -1e-3}, ValueError, r"`learning_rate` must be > 0"),
        ({"l2sp": -1.0}, ValueError, r"`l2sp` must be >= 0"),
        ({"method": "loha"}, ValueError, r"`method` must be one of"),
        ({"task": "summarize"}, ValueError, r"`task` must be one of"),
        ({"template": "no slot"}, ValueError, r"must contain '\{text\}'"),
        ({"task": "translation"}, ValueError, r"pass --data FILE"),
        (
            {"method": "linear_probe", "task": "causal_lm"},
            ValueError,
            r"needs --task classification",
        ),
        (
            {"method": "ia3", "share_weights": True},
            ValueError,
            r"`share_weights` is not an option of method='ia3'",
        ),
        (
            {"adapter": {"dropuot": 0.1}},
            ValueError,
            r"`adapter`: unknown option\(s\) \['dropuot'\]",
        ),
        ({"adapter": {"dropout": 2.0}}, ValueError, r"`dropout` must be"),
        ({"adapter": [1]}, TypeError, r"`adapter` must be dict"),
        (
            {"rank": 4, "adapter": {"rank": 8}},
            ValueError,
            r"`rank` is set twice",
        ),
        (
            {"method": "full", "rank": 4},
            ValueError,
            r"\['rank'\] are adapter options; method='full' trains no",
        ),
    ],
)
def test_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        FinetuneConfig.from_dict(options, "config")


def test_bottleneck_larger_than_the_hidden_size_leaves_the_model_unchanged():
    model = tiny_models.backbone()
    before = [np.array(v) for v in model.weights]
    config = tfa.BottleneckConfig(bottleneck_size=64)
    with pytest.raises(ValueError, match=r"`bottleneck_size` \(64\) must not"):
        tfa.add_adapter(model, config)
    assert tfa.list_adapters(model) == []
    for var, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(var, value)


def _write(path, data):
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    "name, data, error, match",
    [
        ("missing.jsonl", None, FileNotFoundError, r"missing.jsonl not found"),
        ("empty.jsonl", b"\n  \n", ValueError, r"is empty; it must hold"),
        (
            "bytes.jsonl",
            b'{"text": "ok", "label": "a"}\n{"text": "\xff\xfe", "label": "a"}',
            ValueError,
            r"bytes.jsonl:2: bytes that are not UTF-8.*re-save the file",
        ),
        (
            "json.jsonl",
            b'{"text": "ok", "label": "a"}\n{text: 1}',
            ValueError,
            r"json.jsonl:2: not valid JSON",
        ),
        (
            "field.jsonl",
            b'{"text": "ok"}',
            ValueError,
            r"field.jsonl:1:.*'label'",
        ),
        (
            "labels.jsonl",
            b'{"text": "ok", "label": "a"}\n{"text": "no", "label": "c"}',
            ValueError,
            r"record 2 has label 'c', outside the label set \['a', 'b'\]",
        ),
        ("data.parquet", b"x", ValueError, r"unsupported file type '.parquet'"),
    ],
)
def test_bad_data_files(tmp_path, name, data, error, match):
    path = str(tmp_path / name)
    if data is not None:
        _write(tmp_path / name, data)
    with pytest.raises(error, match=match):
        load_classification_records(path, labels=["a", "b"])


def test_fields_a_txt_file_cannot_supply(tmp_path):
    path = _write(tmp_path / "t.txt", b"one line\n")
    with pytest.raises(ValueError, match="cannot supply fields"):
        load_records(path, ["prompt", "response"])


def test_long_texts_are_cut_counted_and_reported(tiny_preset, tmp_path):
    # The policy: the text is cut from its end, the template never; the
    # number of cut texts is in report.json.
    from tf_adapters.pipeline.finetune import run_finetune

    rows = [
        {"text": " airplane" * (40 if i % 3 == 0 else 1), "label": "ab"[i % 2]}
        for i in range(24)
    ]
    rows = [dict(r, text=r["text"] + f" {i}") for i, r in enumerate(rows)]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    report = run_finetune(
        FinetuneConfig(
            model=tiny_preset,
            data=str(data),
            labels=["a", "b"],
            template="{text} is",
            steps=1,
            batch_size=4,
            sequence_length=12,
            test_size=6,
            jit_compile=False,
            export=False,
            output=str(tmp_path / "run"),
        )
    )
    cut = report["truncated"]
    assert cut["train"] + cut["test"] == 8  # every third text is long
    assert cut["train"] > 0


def test_generate_prompt_beyond_the_context(tiny_preset, capsys):
    code = main(
        [
            "generate",
            " the" * 70,
            "--model",
            tiny_preset,
            "--max-new-tokens",
            "1",
        ]
    )
    assert code == 2
    assert "exceeds the model's context of 64 tokens" in capsys.readouterr().err


def test_adapter_for_another_base_is_refused(tmp_path):
    model = tiny_models.backbone("gpt2")
    tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
    tfa.save_adapter(model, str(tmp_path / "a"))
    other = tiny_models.backbone("opt")
    with pytest.raises(ValueError, match="family"):
        tfa.load_adapter(other, str(tmp_path / "a"))
    assert tfa.list_adapters(other) == []


def test_nothing_in_the_package_unpickles():
    root = os.path.dirname(tfa.__file__)
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                assert "allow_pickle=True" not in text, name
                assert "import pickle" not in text, name
                assert "safe_mode=False" not in text, name


def test_keras_files_with_code_are_refused(tmp_path):
    # safe_mode (Keras's default, which we never turn off) refuses a
    # .keras file that would run arbitrary Python (a Lambda layer).
    import keras

    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)]
    )
    path = str(tmp_path / "lambda.keras")
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(path)
