"""`python -m bench --gpu`: the training and generation tables in mixed
precision on a GPU, the PyTorch peers on CUDA, MFU against the compute
dtype's matmul peak; a clear refusal where TensorFlow sees no GPU.

No GPU is lent to CI: the whole `--gpu --quick` path runs here on the CPU
with the GPU check answered by a stand-in (the runs themselves never ask
for a device, so they run where TensorFlow puts them)."""

import json

import pytest

import bench.__main__ as bench_main
from bench import peer
from bench import train
from bench.report import markdown


def test_without_a_gpu_it_stops_and_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(bench_main, "gpu_names", lambda: [])
    with pytest.raises(SystemExit) as exit_info:
        bench_main.main(["--gpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--gpu: TensorFlow sees no GPU" in err
    assert "tensorflow[and-cuda]" in err and "run without --gpu" in err


def test_gpu_runs_only_train_and_generate(monkeypatch, capsys):
    monkeypatch.setattr(bench_main, "gpu_names", lambda: ["a GPU"])
    with pytest.raises(SystemExit):
        bench_main.main(["--gpu", "--suites", "memory", "serve"])
    assert "train and generate suites only" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", "mixed_float16"])
def test_the_gpu_plan_is_mixed_precision_with_the_peers(dtype):
    plan = bench_main.gpu_plan(False, dtype)
    assert set(plan) == {"train", "generate"}
    first = plan["train"][0]
    assert first["shape"] == "gpt2_small"
    assert {"full", "lora", "peft_lora"} <= set(first["methods"])
    for run in plan["train"] + [plan["generate"]]:
        assert run["dtype"] == dtype and run["gpu"] is True
    assert "transformers" in plan["generate"]["variants"]
    assert bench_main.gpu_plan(True, dtype)["train"][0]["shape"] == "tiny"


def test_mfu_counts_against_the_compute_dtype_on_a_gpu_only():
    assert train.peak_dtype("mixed_bfloat16", gpu=True) == "bfloat16"
    assert train.peak_dtype("mixed_float16", gpu=True) == "float16"
    assert train.peak_dtype("float32", gpu=True) == "float32"
    assert train.peak_dtype("mixed_bfloat16", gpu=False) == "float32"


def test_gpu_peers_join_mixed_bfloat16_runs_on_cuda(monkeypatch):
    methods = ["full", "lora", "peft_lora"]
    kept, notes = train.peers_that_fit(methods, "mixed_float16", gpu=True)
    assert kept == ["full", "lora"]
    assert notes == [
        "peft_lora left out: mixed_bfloat16 only on a GPU "
        "(this run: mixed_float16)"
    ]
    monkeypatch.setattr(peer, "cuda_missing", lambda: None)
    assert train.peers_that_fit(methods, "mixed_bfloat16", gpu=True) == (
        methods,
        [],
    )
    monkeypatch.setattr(peer, "cuda_missing", lambda: "no CUDA here")
    assert train.peers_that_fit(methods, "mixed_bfloat16", gpu=True) == (
        ["full", "lora"],
        ["no CUDA here"],
    )


def test_the_quick_gpu_bench_end_to_end(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench_main, "gpu_names", lambda: ["Stand-in GPU"])
    bench_main.main(["--gpu", "--quick", "--output", str(tmp_path)])
    result = json.loads((tmp_path / "gpu_quick.json").read_text())
    assert result["machine"]["gpus"] == ["Stand-in GPU"]
    assert set(result) >= {"train", "generate"}
    assert "memory" not in result and "serve" not in result
    [run] = result["train"]
    assert run["dtype"] == "mixed_bfloat16" and run["gpu"] is True
    assert run["peak_dtype"] == "bfloat16" and run["peak_gflops"] > 0
    assert set(run["methods"]) >= {"full", "lora"}
    for row in run["methods"].values():
        assert row["tokens_per_s"] > 0 and 0 < row["mfu"]
    gen = result["generate"]
    assert gen["dtype"] == "mixed_bfloat16" and gen["gpu"] is True
    assert {"base", "lora_merged"} <= set(gen["batches"][0]["variants"])
    if peer.cuda_missing():  # this machine: the peers say why they are out
        assert any("no CUDA device" in n for n in run["notes"])
        assert any("no CUDA device" in n for n in gen["notes"])
    text = (tmp_path / "gpu_quick.md").read_text()
    assert text == markdown(result)
    assert "GPU: Stand-in GPU" in text
    assert "bfloat16 matmul peak" in text
    assert "**tiny, mixed_bfloat16, on the GPU**" in text
