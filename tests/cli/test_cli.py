import dataclasses
import json
import re

import keras_hub
import pytest

from tf_adapters.cli.main import build_parser
from tf_adapters.cli.main import main
from tf_adapters.pipeline.config import FinetuneConfig


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["finetune", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(FinetuneConfig):
        assert "--" + field.name.replace("_", "-") in text, field.name
    assert "--config" in text


def test_flags_override_config_file(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "tf_adapters.pipeline.run_finetune",
        lambda config: seen.__setitem__("config", config),
    )
    (tmp_path / "c.yaml").write_text("rank: 4\nsteps: 7\nmethod: lora\n")
    assert (
        main(
            [
                "finetune",
                "--config",
                str(tmp_path / "c.yaml"),
                "--steps",
                "9",
                "--no-export",
                "--labels",
                "a",
                "b",
            ]
        )
        == 0
    )
    config = seen["config"]
    assert (config.rank, config.steps, config.method) == (4, 9, "lora")
    assert config.export is False and config.labels == ["a", "b"]

    (tmp_path / "c.json").write_text(json.dumps({"learning_rate": 0.01}))
    assert main(["finetune", "--config", str(tmp_path / "c.json")]) == 0
    assert seen["config"].learning_rate == 0.01


@pytest.mark.parametrize(
    "content, name, match",
    [
        ("rnak: 4\n", "c.yaml", r"unknown option\(s\) \['rnak'\]"),
        ("rank: 0\n", "c.yaml", r"`rank` must be >= 1"),
        ("- 1\n", "c.yaml", "must hold a mapping"),
        ("{bad", "c.json", "cannot be parsed"),
        ("template: no placeholder\n", "c.yaml", "must contain '{text}'"),
    ],
)
def test_bad_config_files_exit_2_with_a_message(
    tmp_path, capsys, content, name, match
):
    (tmp_path / name).write_text(content)
    assert main(["finetune", "--config", str(tmp_path / name)]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_bad_flag_values_are_rejected(capsys):
    assert main(["finetune", "--learning-rate", "-1"]) == 2
    assert "`learning_rate` must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["finetune", "--method", "loha"])


def test_export_command_with_an_adapter(tmp_path, capsys):
    import os

    import tiny_models

    import tf_adapters as tfa

    model = tiny_models.gpt2_causal_lm()
    model.save_to_preset(str(tmp_path / "preset"))
    tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
    tfa.save_adapter(model, str(tmp_path / "adapter"))
    argv = [
        "export",
        "--model",
        str(tmp_path / "preset"),
        "--adapter",
        str(tmp_path / "adapter"),
        "--name",
        "lm",
        "--export-dir",
        str(tmp_path / "saved"),
        "--no-text",
    ]
    assert main(argv) == 0
    assert "saved/lm/1" in capsys.readouterr().out
    assert main(argv) == 0
    assert sorted(os.listdir(tmp_path / "saved" / "lm")) == ["1", "2"]
    assert main(argv + ["--version", "1"]) == 2
    assert "never overwritten" in capsys.readouterr().err


def test_export_command_serves_several_adapters(tmp_path, capsys):
    import tensorflow as tf
    import tiny_models

    import tf_adapters as tfa

    model = tiny_models.gpt2_causal_lm()
    model.save_to_preset(str(tmp_path / "preset"))
    for name, config in [("a", tfa.LoraConfig(rank=2)), ("b", tfa.IA3Config())]:
        tfa.add_adapter(model, config, name=name)
        tfa.save_adapter(model, str(tmp_path / name), name=name)
    argv = ["export", "--model", str(tmp_path / "preset"), "--adapter"]
    argv += [str(tmp_path / "a"), str(tmp_path / "b")]
    argv += ["--name", "lm", "--export-dir", str(tmp_path / "s"), "--no-text"]
    assert main(argv) == 0
    loaded = tf.saved_model.load(str(tmp_path / "s" / "lm" / "1"))
    spec = loaded.signatures["logits"].structured_input_signature[1]
    assert set(spec) == {"adapter", "token_ids", "padding_mask"}


def test_generate_command(tiny_preset, capsys, monkeypatch):
    compiled = []
    compile_ = keras_hub.models.CausalLM.compile

    def recording_compile(self, *args, **kwargs):
        compiled.append(kwargs.get("jit_compile"))
        return compile_(self, *args, **kwargs)

    monkeypatch.setattr(keras_hub.models.CausalLM, "compile", recording_compile)
    assert (
        main(
            [
                "generate",
                " airplane at",
                " the",
                "--model",
                tiny_preset,
                "--max-new-tokens",
                "3",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    out = text.split("---\n")
    assert out[0].startswith(" airplane at") and out[1].startswith(" the")
    # Decoding compiled with XLA (off by default) says the same greedily.
    argv = ["generate", " airplane at", " the", "--model", tiny_preset]
    assert main([*argv, "--max-new-tokens", "3", "--jit-compile"]) == 0
    assert capsys.readouterr().out == text
    # (keras-hub's constructors compile with the default, `None`.)
    assert [c for c in compiled if c is not None] == [False, True]
    assert (
        main(
            [
                "generate",
                " the",
                "--model",
                tiny_preset,
                "--sampler",
                "top_k",
                "--top-k",
                "3",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    # The tiny model's context is 64 tokens.
    assert (
        main(
            [
                "generate",
                " the",
                "--model",
                tiny_preset,
                "--max-new-tokens",
                "100",
            ]
        )
        == 2
    )
    assert "exceeds the model's context of 64" in capsys.readouterr().err


def test_evaluate_command_needs_weights_for_a_linear_head(
    tiny_preset, tmp_path, capsys
):
    rows = [
        {"text": f" the airplane {i}", "label": "ab"[i % 2]} for i in range(20)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    code = main(
        [
            "evaluate",
            "--model",
            tiny_preset,
            "--data",
            str(data),
            "--head",
            "linear",
            "--template",
            "{text} is",
            "--test-size",
            "4",
            "--sequence-length",
            "12",
        ]
    )
    assert code == 2
    assert "pass --weights" in capsys.readouterr().err


def test_evaluate_starts_from_the_options_of_the_run_it_scores(
    tmp_path, monkeypatch
):
    seen = {}
    monkeypatch.setattr(
        "tf_adapters.pipeline.run_evaluate",
        lambda config, adapter, weights, label_bias: seen.update(
            config=config, adapter=adapter, label_bias=label_bias
        ),
    )
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    options = {
        "task": "prompt_response",
        "data": "qa",
        "sequence_length": 96,
        "test_size": 50,
        "split_seed": 3,
        "method": "ia3",  # not a scoring option: the adapter carries it
    }
    (run / "report.json").write_text(
        json.dumps({"reproduce": {"options": options}})
    )
    argv = ["evaluate", "--adapter", str(run / "adapter"), "--test-size", "7"]
    assert main(argv) == 0
    config = seen["config"]
    assert (config.task, config.data, config.sequence_length) == (
        "prompt_response",
        "qa",
        96,
    )
    assert (config.test_size, config.split_seed) == (7, 3)  # the flag wins
    assert config.method == "lora"

    # An adapter saved by hand (no report beside it): the defaults.
    (tmp_path / "alone").mkdir()
    assert main(["evaluate", "--adapter", str(tmp_path / "alone")]) == 0
    assert (seen["config"].task, seen["config"].test_size) == (
        "classification",
        400,
    )
    assert seen["config"].eval_sequence_length == 128  # whole reviews

    # A run from before `eval_sequence_length` scored at its own length;
    # a later run's report names it.
    for named, scored in (({}, 64), ({"eval_sequence_length": 100}, 100)):
        options = {"task": "classification", "sequence_length": 64, **named}
        (run / "report.json").write_text(
            json.dumps({"reproduce": {"options": options}})
        )
        assert main(["evaluate", "--adapter", str(run / "adapter")]) == 0
        assert seen["config"].eval_sequence_length == scored
        assert seen["label_bias"] is None  # no calibration recorded

    # The bias the run calibrated is set again; a damaged one is refused.
    for bias, code in (([0.25, -0.25], 0), (["x", 1], 2)):
        (run / "report.json").write_text(
            json.dumps(
                {
                    "reproduce": {"options": {"task": "classification"}},
                    "calibration": {"examples": 256, "label_bias": bias},
                }
            )
        )
        seen.pop("label_bias", None)
        assert main(["evaluate", "--adapter", str(run / "adapter")]) == code
        assert seen.get("label_bias") == (bias if code == 0 else None)


def test_evaluate_names_an_unreadable_run_report(tmp_path, capsys):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "report.json").write_text("{half")
    code = main(["evaluate", "--adapter", str(tmp_path / "adapter")])
    assert code == 2
    err = capsys.readouterr().err
    assert "report.json cannot be read as a finetune report" in err


def test_convert_command_round_trips_through_peft(tmp_path, capsys):
    import json

    import numpy as np
    import tiny_models

    import tf_adapters as tfa

    model = tiny_models.gpt2_causal_lm()
    model.save_to_preset(str(tmp_path / "preset"))
    tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
    for var in model.backbone.trainable_weights:
        var.assign(np.full(var.shape, 0.05, "float32"))
    ids = np.array([[1, 2, 3, 4]])
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    expected = np.asarray(model(inputs))
    tfa.save_adapter(model, str(tmp_path / "ours"))
    preset = ["--model", str(tmp_path / "preset")]
    peft_dir, back = str(tmp_path / "peft"), str(tmp_path / "back")
    assert (
        main(
            ["convert", str(tmp_path / "ours"), peft_dir, "--to", "peft"]
            + preset
            + ["--base-model-name-or-path", "gpt2"]
        )
        == 0
    )
    with open(f"{peft_dir}/adapter_config.json") as f:
        meta = json.load(f)
    assert meta["peft_type"] == "LORA" and meta["base_model_name_or_path"] == (
        "gpt2"
    )
    assert (
        main(["convert", peft_dir, back, "--to", "tf_adapters"] + preset) == 0
    )
    assert "tf_adapters format" in capsys.readouterr().out
    fresh = tfa.load_base(str(tmp_path / "preset"))
    tfa.load_adapter(fresh, back)
    assert np.abs(np.asarray(fresh(inputs)) - expected).max() < 1e-5
    # A PEFT method we do not have is refused with exit status 2.
    meta["peft_type"] = "LOHA"
    with open(f"{peft_dir}/adapter_config.json", "w") as f:
        json.dump(meta, f)
    assert (
        main(["convert", peft_dir, back, "--to", "tf_adapters"] + preset) == 2
    )
    assert "'LOHA' is not supported" in capsys.readouterr().err


def test_export_command_writes_a_hugging_face_checkpoint(tmp_path, capsys):
    import os

    import tiny_models

    import tf_adapters as tfa

    model = tiny_models.gpt2_causal_lm()
    model.save_to_preset(str(tmp_path / "preset"))
    tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
    tfa.save_adapter(model, str(tmp_path / "adapter"), format="peft")
    argv = ["export", "--model", str(tmp_path / "preset"), "--format", "hf"]
    argv += ["--name", "merged", "--export-dir", str(tmp_path / "hf")]
    assert main(argv + ["--adapter", str(tmp_path / "adapter")]) == 0
    assert "Hugging Face checkpoint written" in capsys.readouterr().out
    files = os.listdir(tmp_path / "hf" / "merged")
    assert {"config.json", "model.safetensors"} <= set(files)
    # Two adapters cannot both be merged into one checkpoint.
    tfa.save_adapter(model, str(tmp_path / "again"))
    adapters = [str(tmp_path / "adapter"), str(tmp_path / "again")]
    assert main(argv + ["--adapter", *adapters]) == 2
    assert "one adapter merged" in capsys.readouterr().err
