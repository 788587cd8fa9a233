"""One source of truth for a run's adapter options (issue 15): the method
registry's names and configs, reachable from the CLI and config files."""

import dataclasses

import pytest
import yaml

from tf_adapters.cli.main import build_parser
from tf_adapters.cli.main import main
from tf_adapters.methods import registry
from tf_adapters.pipeline import DEFAULT_METHODS
from tf_adapters.pipeline.config import METHODS
from tf_adapters.pipeline.config import FinetuneConfig


def test_the_registry_drives_the_method_choices():
    adapters = registry.adapter_method_names()
    assert METHODS == adapters + ("fusion", "full", "linear_probe")
    variants = set(registry.VARIANTS)
    assert variants == {"dora", "rslora", "pissa", "olora", "lora_all_linear"}
    # A fusion needs trained adapters: `compare --fuse` adds its row.
    assert set(DEFAULT_METHODS) == set(METHODS) - variants - {"fusion"}
    finetune = build_parser()._subparsers._group_actions[0].choices["finetune"]
    method = next(a for a in finetune._actions if a.dest == "method")
    assert tuple(method.choices) == METHODS


# A value other than the default for every option of every adapter config;
# a new option fails the test below until it is listed here.
NON_DEFAULT = {
    "rank": 4,
    "alpha": 3.0,
    "dropout": 0.1,
    "target_layers": ["query"],
    "exclude": ["key"],
    "share_weights": True,
    "use_rslora": True,
    "rank_pattern": {"value": 2},
    "alpha_pattern": {"value": 4.0},
    "trainable_layers": ["layer_norm"],
    "bottleneck_size": 8,
    "reduction_factor": 8,
    "activation": "gelu",
    "layer_norm": True,
    "scaling": 0.5,
    "parallel_input_layer": "feedforward_intermediate_dense",
    "feedforward_layers": ["feedforward_output_dense"],
    "num_virtual_tokens": 4,
    "init": "random",
    "seed": 3,
    "use_dora": True,
    "projection": 64,
    "init_std": 0.5,
    "init_rank": 16,
    "target_rank": 4,
    "tinit": 5,
    "tfinal": 5,
    "delta_t": 2,
    "beta1": 0.9,
    "beta2": 0.9,
    "orth_reg_weight": 0.1,
    "total_step": 100,
    # A name two methods share, with a value per method.
    ("lora", "init"): "pissa",
}


@pytest.mark.parametrize("method", registry.adapter_method_names())
def test_every_option_of_every_config_is_reachable(method):
    cls, fixed = registry.SHORTCUTS[method]
    for field in dataclasses.fields(cls):
        if field.name in fixed:
            continue
        if field.name == "share_weights" and fixed.get("init"):
            continue  # PiSSA / OLoRA refuse it (tests/methods)
        if field.name == "parallel_input_layer" and method != "parallel":
            continue  # only the parallel variant reads the block input
        value = NON_DEFAULT.get(
            (cls.method, field.name), NON_DEFAULT[field.name]
        )
        assert value != field.default, field.name
        config = FinetuneConfig(method=method, adapter={field.name: value})
        adapter = config.adapter_config()
        assert isinstance(adapter, cls)
        assert getattr(adapter, field.name) == value, field.name
        for key, fixed_value in fixed.items():
            assert getattr(adapter, key) == fixed_value


def test_defaults_come_from_the_adapter_configs():
    import tf_adapters as tfa

    assert FinetuneConfig().adapter_config() == tfa.LoraConfig()
    houlsby = FinetuneConfig(method="houlsby").adapter_config()
    assert houlsby == tfa.BottleneckConfig(variant="houlsby")
    prompt = FinetuneConfig(method="prompt_tuning", seed=3).adapter_config()
    assert prompt == tfa.PromptTuningConfig(seed=3)
    assert FinetuneConfig(method="full").adapter_config() is None


def test_shortcut_flags_and_adapter_mapping_combine():
    config = FinetuneConfig(rank=4, adapter={"dropout": 0.25})
    lora = config.adapter_config()
    assert (lora.rank, lora.alpha, lora.dropout) == (4, 8.0, 0.25)


def test_for_method_keeps_only_the_options_a_method_has():
    config = FinetuneConfig(
        rank=4, share_weights=True, adapter={"dropout": 0.1}
    )
    ia3 = config.for_method("ia3", steps=3)
    assert (ia3.method, ia3.rank, ia3.share_weights, ia3.adapter) == (
        "ia3",
        None,
        None,
        None,
    )
    assert ia3.steps == 3
    houlsby = config.for_method("houlsby", {"bottleneck_size": 8})
    assert houlsby.adapter == {"share_weights": True, "bottleneck_size": 8}
    assert houlsby.adapter_config().bottleneck_size == 8


def test_compare_gives_each_method_its_own_options(tmp_path, monkeypatch):
    from tf_adapters.pipeline import compare

    seen = {}
    monkeypatch.setattr(
        compare, "_run_child", lambda c, d, label: seen.__setitem__(label, c)
    )
    argv = ["compare", "--compare-output", str(tmp_path), "--rank", "4"]
    argv += ["--bottleneck-size", "16", "--methods", "lora", "houlsby", "ia3"]
    argv += ["--adapter-option", "dropout=0.2"]
    with pytest.raises(RuntimeError, match="Every run failed"):  # faked runs
        main(argv)
    lora = seen["lora"].adapter_config()
    assert (lora.rank, lora.dropout) == (4, 0.2)
    assert seen["houlsby"].adapter_config().bottleneck_size == 16
    assert seen["ia3"].adapter is None


def test_cli_adapter_flags_and_config_file(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "tf_adapters.pipeline.run_finetune",
        lambda config: seen.__setitem__("config", config),
    )
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {"method": "houlsby", "adapter": {"layer_norm": True, "scaling": 2}}
        )
    )
    argv = ["finetune", "--config", str(path), "--no-export"]
    argv += ["--adapter-option", "scaling=5e-1"]  # 1e-1 style reads as 0.5
    argv += ["--adapter-option", "exclude=[layer_0]"]
    assert main(argv) == 0
    adapter = seen["config"].adapter_config()
    assert (adapter.variant, adapter.layer_norm) == ("houlsby", True)
    assert (adapter.scaling, adapter.exclude) == (0.5, ["layer_0"])


def test_cli_rejects_a_bad_adapter_flag(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--adapter-option", "dropout"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["finetune", "--adapter-option", "rnak=4"]) == 2
    assert "unknown option(s) ['rnak']" in capsys.readouterr().err


def test_compare_adds_a_fusion_row_of_trained_adapters(tmp_path, monkeypatch):
    from tf_adapters.pipeline import compare

    seen = {}
    monkeypatch.setattr(
        compare, "_run_child", lambda c, d, label: seen.__setitem__(label, c)
    )
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    fuse = [str(tmp_path / "a"), str(tmp_path / "b")]
    argv = ["compare", "--compare-output", str(tmp_path / "out"), "--rank"]
    argv += ["4", "--methods", "lora", "--fuse", *fuse]
    with pytest.raises(RuntimeError, match="Every run failed"):  # faked runs
        main(argv)
    assert sorted(seen) == ["fusion", "lora"]
    assert (seen["fusion"].method, seen["fusion"].fuse) == ("fusion", fuse)
    assert seen["fusion"].adapter is None and seen["lora"].fuse is None


@pytest.mark.parametrize(
    "options, match",
    [
        ({"method": "fusion"}, "needs --fuse ADAPTER_DIR"),
        ({"method": "fusion", "fuse": ["nowhere"]}, "'nowhere' is not a"),
        ({"method": "lora", "fuse": ["."]}, "needs --method fusion"),
        ({"method": "fusion", "fuse": ["."], "rank": 4}, "leave adapter"),
    ],
)
def test_fusion_runs_check_their_options(options, match):
    with pytest.raises(ValueError, match=match):
        FinetuneConfig(**options)


def test_learning_rate_defaults_and_schedules():
    from tf_adapters.pipeline.config import BASELINE_LEARNING_RATES
    from tf_adapters.pipeline.config import default_learning_rate

    # Unset: each method's own; set: that rate for any method.
    assert (
        FinetuneConfig(method="full").effective_learning_rate()
        == (BASELINE_LEARNING_RATES["full"])
    )
    houlsby = FinetuneConfig(method="houlsby")
    assert houlsby.effective_learning_rate() == default_learning_rate("houlsby")
    assert FinetuneConfig(learning_rate=0.02).effective_learning_rate() == 0.02
    assert FinetuneConfig().learning_rate_schedule() == default_learning_rate(
        "lora"
    )
    warm = FinetuneConfig(learning_rate=0.01, steps=8, warmup_steps=4)
    schedule = warm.learning_rate_schedule()
    assert [round(float(schedule(s)), 6) for s in (0, 2, 4, 8)] == [
        0.0,
        0.005,
        0.01,
        0.01,
    ]
    with pytest.raises(ValueError, match="`warmup_steps` \\(8\\) must be"):
        FinetuneConfig(steps=8, warmup_steps=8)
    with pytest.raises(ValueError, match="lr_schedule"):
        FinetuneConfig(lr_schedule="step")


def test_sequence_length_defaults_to_the_task():
    # Classification's prompt was chosen with 64 tokens (docs/main_job.md);
    # the other tasks keep 80. A value given always wins.
    assert FinetuneConfig().sequence_length == 64
    assert "Sentiment (positive or negative):" in FinetuneConfig().template
    assert FinetuneConfig(task="causal_lm").sequence_length == 80
    assert FinetuneConfig(task="prompt_response").sequence_length == 80
    assert FinetuneConfig(sequence_length=80).sequence_length == 80
    with pytest.raises(ValueError, match="sequence_length"):
        FinetuneConfig(sequence_length=0)


def test_evaluation_length_defaults_to_whole_reviews_for_classification():
    # Trained at 64 tokens for speed, scored on the whole review (the
    # longest built-in one takes 98 tokens); never below the training
    # length; the other tasks score at their training length.
    assert FinetuneConfig().eval_sequence_length == 128
    assert FinetuneConfig(sequence_length=200).eval_sequence_length == 200
    assert FinetuneConfig(task="causal_lm").eval_sequence_length == 80
    assert (
        FinetuneConfig(task="prompt_response", sequence_length=96)
    ).eval_sequence_length == 96
    assert FinetuneConfig(eval_sequence_length=32).eval_sequence_length == 32
    with pytest.raises(ValueError, match="eval_sequence_length"):
        FinetuneConfig(eval_sequence_length=0)


def test_batches_are_cut_only_without_xla_and_tpus():
    assert FinetuneConfig().dynamic_padding  # the default: no XLA
    assert not FinetuneConfig(jit_compile=True).dynamic_padding
    assert not FinetuneConfig(strategy="tpu").dynamic_padding
    assert FinetuneConfig(group_by_length=True).group_by_length
    for options in (
        {"jit_compile": True},
        {"strategy": "tpu"},
        {"task": "causal_lm", "stream": True, "data": "x.txt"},
    ):
        with pytest.raises(ValueError, match="group_by_length"):
            FinetuneConfig(group_by_length=True, **options)
