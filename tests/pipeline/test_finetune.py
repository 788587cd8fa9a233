import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tiny_models

import tf_adapters as tfa
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.pipeline.finetune import run_finetune
from tf_adapters.pipeline.fusion import load_with_fused


@pytest.fixture()
def data_file(tmp_path):
    rows = [
        {"text": t, "label": label}
        for t, label in [
            (" airplane at airport", "air"),
            (" the airplane", "plane"),
            (" airport air", "air"),
            (" plane plane", "plane"),
        ]
        * 6
    ]
    # Distinct texts, so cleaning's de-duplication keeps them all.
    rows = [dict(r, text=r["text"] + " !" * i) for i, r in enumerate(rows)]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def _config(tmp_path, preset, data, **kw):
    return FinetuneConfig(
        model=preset,
        data=data,
        labels=["air", "plane"],
        template="{text} is",
        steps=2,
        batch_size=4,
        sequence_length=12,
        test_size=8,
        jit_compile=False,
        output=str(tmp_path / "run"),
        export_dir=str(tmp_path / "saved_models"),
        **{"export_name": "tiny", **kw},
    )


def test_finetune_runs_end_to_end(
    tmp_path, tiny_preset, data_file, count_traces
):
    traces = count_traces("train_step")
    predict_traces = count_traces("predict_step")
    report = run_finetune(_config(tmp_path, tiny_preset, data_file))
    # The task model makes its optimizer's and metrics' variables before
    # the first trace, so its first step is traced once, not twice.
    assert len(traces) == 1
    # The base is evaluated through the fresh LoRA adapter (still exactly
    # the base), so both evaluations use one traced prediction.
    assert len(predict_traces) == 1
    assert report["test_examples"] == 8
    for side in ("base", "adapted"):
        assert 0 <= report[side]["accuracy"] <= 1
        assert np.sum(report[side]["confusion_matrix"]) == 8
    assert report["trainable_params"] > 0
    phases = report["phases"]
    assert list(phases) == [
        "load", "data", "build", "base_evaluation", "adapt", "compile",
        "train", "calibration", "save", "evaluation", "export",
    ]  # fmt: skip
    assert min(phases.values()) >= 0
    assert sum(phases.values()) <= report["total_seconds"] + 0.5
    assert phases["train"] >= report["first_step_seconds"] - 0.1
    assert phases["export"] > 0 and phases["base_evaluation"] > 0
    assert os.path.isfile(tmp_path / "run" / "adapter" / "adapter_config.json")
    assert json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["saved_model"].endswith(os.path.join("tiny", "1"))

    loaded = tf.saved_model.load(report["saved_model"])
    classify = loaded.signatures["classify"]
    out = classify(
        token_ids=tf.ones((3, 5), tf.int32),
        padding_mask=tf.ones((3, 5), tf.int32),
    )
    probs = out["probabilities"].numpy()
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)

    # A second export never overwrites: it becomes version 2.
    again = run_finetune(
        _config(tmp_path, tiny_preset, data_file, method="ia3")
    )
    assert again["saved_model"].endswith(os.path.join("tiny", "2"))
    assert sorted(os.listdir(tmp_path / "saved_models" / "tiny")) == ["1", "2"]


def test_the_base_through_a_fresh_adapter_is_the_frozen_base(
    tmp_path, tiny_preset, data_file, monkeypatch
):
    from tf_adapters.pipeline import stages

    shared = run_finetune(
        _config(tmp_path, tiny_preset, data_file, export=False)
    )
    monkeypatch.setattr(stages, "base_through_adapter", lambda config: False)
    alone = run_finetune(
        _config(tmp_path, tiny_preset, data_file, export=False)
    )
    for report in (shared, alone):
        report["base"].pop("seconds")
    assert shared["base"] == alone["base"]
    assert shared["adapted"]["accuracy"] == alone["adapted"]["accuracy"]


def test_prompt_tuning_job(tmp_path, tiny_preset, data_file):
    report = run_finetune(
        _config(
            tmp_path,
            tiny_preset,
            data_file,
            method="prompt_tuning",
            num_virtual_tokens=2,
            export=False,
        )
    )
    assert report["saved_model"] is None
    assert report["trainable_params"] == 2 * 8


def test_labels_must_start_with_different_tokens():
    from tf_adapters.tasks.classification import label_token_ids

    tokenizer = tiny_models.gpt2_causal_lm().preprocessor.tokenizer
    assert len(set(label_token_ids(tokenizer, ["air", "plane"]))) == 2
    with pytest.raises(ValueError, match="start with the same token"):
        label_token_ids(tokenizer, ["air", "airport"])


def test_finetune_starts_from_a_peft_adapter(tmp_path, tiny_preset, data_file):
    import tf_adapters as tfa
    from tf_adapters.injection.lifecycle import adapter_variables

    model = tfa.load_base(tiny_preset)
    tfa.add_adapter(model, tfa.LoraConfig(rank=2), "start")
    for var in adapter_variables(model.backbone, "start").values():
        var.assign(np.full(var.shape, 0.25, "float32"))
    start = str(tmp_path / "peft")
    tfa.save_adapter(model, start, format="peft")
    # A learning rate of ~0: the trained adapter is the one it started from.
    run_finetune(
        _config(
            tmp_path,
            tiny_preset,
            data_file,
            init_adapter=start,
            learning_rate=1e-12,
            export=False,
            evaluate_base=False,
        )
    )
    trained = tfa.load_base(tiny_preset)
    tfa.load_adapter(trained, str(tmp_path / "run" / "adapter"))
    initial = tfa.load_adapter(tfa.load_base(tiny_preset), start)
    # GPT-2's fused c_attn LoRA adapts query, key (B = 0) and value.
    before = adapter_variables(initial.backbone, "default")
    after = adapter_variables(trained.backbone, "tiny")
    assert sorted(before) == sorted(after) and len(after) == 2 * 3 * 2
    for key, var in after.items():
        np.testing.assert_allclose(var.numpy(), before[key].numpy(), atol=1e-6)

    with pytest.raises(ValueError, match="is a lora adapter, not ia3"):
        run_finetune(
            _config(
                tmp_path,
                tiny_preset,
                data_file,
                init_adapter=start,
                method="ia3",
            )
        )
    with pytest.raises(ValueError, match="brings its own adapter options"):
        _config(tmp_path, tiny_preset, data_file, init_adapter=start, rank=4)


def test_a_fusion_run_mixes_two_trained_adapters(
    tmp_path, tiny_preset, data_file
):
    for name in ("air", "plane"):
        run_finetune(
            _config(
                tmp_path / name,
                tiny_preset,
                data_file,
                method="pfeiffer",
                export=False,
                evaluate_base=False,
                export_name=name,
            )
        )
    fuse = [str(tmp_path / n / "run" / "adapter") for n in ("air", "plane")]
    config = _config(
        tmp_path, tiny_preset, data_file, method="fusion", fuse=fuse
    )
    report = run_finetune(config)
    assert report["fused"] == {"air": fuse[0], "plane": fuse[1]}
    for name in ("air", "plane"):
        assert os.path.isdir(tmp_path / "run" / "fused" / name)
    # Only the fusion trained: each fused layer's query, key and value.
    # The run's adapter folder loads as it is (`evaluate` and `export` do
    # this): the fused adapters come from the run's fused/ folder first.
    model = tfa.load_base(tiny_preset)
    load_with_fused(model, str(tmp_path / "run" / "adapter"))
    assert tfa.active_adapter(model) == "tiny_fusion"
    assert tfa.list_adapters(model) == ["air", "plane", "tiny_fusion"]
    assert report["trainable_params"] == sum(
        int(np.prod(v.shape)) for v in model.trainable_weights
    )
    loaded = tf.saved_model.load(report["saved_model"])
    out = loaded.signatures["classify"](
        token_ids=tf.ones((2, 5), tf.int32),
        padding_mask=tf.ones((2, 5), tf.int32),
    )
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1, 1e-5)


def test_a_calibrated_run_scores_exports_and_evaluates_with_its_bias(
    tmp_path, tiny_preset, data_file
):
    config = _config(tmp_path, tiny_preset, data_file)
    assert config.calibration_size == 256  # classification's default
    report = run_finetune(config)
    found = report["calibration"]
    # 24 rows: 8 test, 16 train, 8 of them in the 2 batches of 4.
    assert found["examples"] == 8 and len(found["label_bias"]) == 2
    assert abs(sum(found["label_bias"])) < 1e-5
    assert report["phases"]["calibration"] > 0
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["calibration"] == found
    # The SavedModel holds the bias: its logits are the model's plus it.
    loaded = tf.saved_model.load(report["saved_model"])
    x = {
        "token_ids": tf.constant([[5, 6, 7, 8]], tf.int32),
        "padding_mask": tf.ones((1, 4), tf.int32),
    }
    probs = loaded.signatures["classify"](**x)["probabilities"].numpy()
    off = run_finetune(
        dataclasses.replace(
            config, calibration_size=0, output=str(tmp_path / "off")
        )
    )
    assert off["calibration"] is None and "calibration" in off["phases"]
    plain = tf.saved_model.load(off["saved_model"])
    raw = plain.signatures["classify"](**x)["probabilities"].numpy()
    # Same seed, same training: only the bias differs.
    shifted = np.log(raw) + np.asarray(found["label_bias"])
    expected = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)


def test_batches_cut_to_their_longest_row_predict_the_same(
    tmp_path, tiny_preset, data_file, monkeypatch
):
    from tf_adapters.pipeline.evaluate import run_evaluate
    from tf_adapters.pipeline.evaluate import run_label_bias

    config = _config(tmp_path, tiny_preset, data_file, export=False)
    assert config.dynamic_padding  # no XLA: batches are cut
    report = run_finetune(config)
    saved = report["checkpoint"]
    bias = run_label_bias(saved)  # what the run calibrated
    assert bias == report["calibration"]["label_bias"]
    cut = run_evaluate(config, adapter=saved, label_bias=bias)
    monkeypatch.setattr(FinetuneConfig, "dynamic_padding", False)
    full = run_evaluate(config, adapter=saved, label_bias=bias)
    # Sorted by length for the cut batches, put back in place after.
    np.testing.assert_array_equal(
        cut["confusion_matrix"], full["confusion_matrix"]
    )
    assert cut["confusion_matrix"] == report["adapted"]["confusion_matrix"]
    monkeypatch.undo()
    xla = dataclasses.replace(config, jit_compile=True)
    tpu = dataclasses.replace(config, strategy="tpu")
    assert not xla.dynamic_padding and not tpu.dynamic_padding


def test_the_run_keeps_the_moving_average_of_its_weights(
    tmp_path, tiny_preset, data_file
):
    from tests.finetune_runs import adapter_weights

    def trained(name, **options):
        (tmp_path / name).mkdir()
        config = dataclasses.replace(
            _config(tmp_path / name, tiny_preset, data_file, export=False),
            evaluate_base=False,
            **options,
        )
        return adapter_weights(run_finetune(config)["checkpoint"])

    # The same batches in the same order: the weights after steps 1 and 2,
    # and a run of 2 steps that averages them (Keras's EMA starts from the
    # first step's weights).
    first, second = trained("one", steps=1), trained("two", steps=2)
    averaged = trained("ema", steps=2, ema_momentum=0.25)
    assert averaged.keys() == second.keys()
    for name, value in averaged.items():
        assert not np.allclose(first[name], second[name]), name
        np.testing.assert_allclose(
            value, 0.25 * first[name] + 0.75 * second[name], atol=1e-6
        )


def test_a_bad_ema_momentum_is_refused():
    with pytest.raises(ValueError, match="`ema_momentum` must be below 1"):
        FinetuneConfig(ema_momentum=1.0)
    with pytest.raises(ValueError, match="`ema_momentum` must be >= 0"):
        FinetuneConfig(ema_momentum=-0.5)
    assert FinetuneConfig(ema_momentum=0.9).ema_options() == {
        "use_ema": True,
        "ema_momentum": 0.9,
    }


def test_a_mixed_bfloat16_run_trains_a_float32_adapter(
    tmp_path, tiny_preset, data_file, monkeypatch
):
    from tests.finetune_runs import adapter_weights
    from tf_adapters.pipeline import stages

    loaded = []
    load_base = stages.load_base

    def recording_load_base(*args, **kwargs):
        loaded.append(load_base(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(stages, "load_base", recording_load_base)
    config = dataclasses.replace(
        _config(tmp_path, tiny_preset, data_file), dtype="mixed_bfloat16"
    )
    report = run_finetune(config)
    (model,) = loaded
    assert model.backbone.dtype_policy.name == "mixed_bfloat16"
    assert model.backbone.compute_dtype == "bfloat16"
    weights = adapter_weights(report["checkpoint"])
    assert weights and all(w.dtype == np.float32 for w in weights.values())
    assert all(np.abs(w).max() > 0 for w in weights.values())
    assert report["reproduce"]["options"]["dtype"] == "mixed_bfloat16"
    assert np.isfinite(report["final_train_loss"])
    assert os.path.isdir(report["saved_model"])


def test_a_bad_dtype_policy_is_refused():
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        FinetuneConfig(dtype="bfloat16")
