"""Training speed: full fine-tuning, each adapter method, Keras's
`Backbone.enable_lora`, and a PyTorch peer (`peft_lora`: PEFT LoRA on the
`transformers` model of the same shape, `bench.peer`), timed in
interleaved rounds in one process.

The peer is float32 only on the CPU; a run of another dtype leaves it out
with a note, as it does without torch, transformers or peft. On a GPU
(`gpu=True`, `python -m bench --gpu`) it joins `mixed_bfloat16` runs,
under bfloat16 autocast, and MFU counts against the run's compute dtype's
matmul peak (bfloat16 or float16; float32 on the CPU).

`memory` runs one method alone: a process's peak resident memory is all it
has, so memory is measured one method per process (`bench.child`). A
method name ending in `_remat` (`lora_remat`) is that method with
gradient checkpointing of the decoder blocks (`finetune --remat`).
"""

import gc
import time

import keras
import numpy as np
import tensorflow as tf

import tf_adapters as tfa
from bench import peer
from bench.shapes import build_backbone
from bench.shapes import id_range
from bench.shapes import matmul_params
from bench.timing import interleaved
from bench.timing import matmul_peak_flops
from bench.timing import paired_ratio
from bench.timing import peak_rss_mb
from bench.timing import summary
from bench.timing import switch_cost
from tf_adapters.tasks.language_model import LanguageModel
from tf_adapters.training.remat import checkpoint_decoder_layers

METHODS = (
    "full",
    "lora",
    "enable_lora",
    "houlsby",
    "pfeiffer",
    "parallel",
    "ia3",
    "prompt_tuning",
    "peft_lora",
)
PEERS = ("peft_lora",)  # PyTorch rows (bench.peer)
RANK = 8
TARGETS = ["query", "value"]  # keras-hub's own LoRA targets for both shapes
REMAT = "_remat"  # `lora_remat`: LoRA with gradient checkpointing


def adapter_config(method):
    if method == "lora":
        return tfa.LoraConfig(rank=RANK, alpha=RANK, target_layers=TARGETS)
    if method == "ia3":
        return tfa.IA3Config()
    if method == "prompt_tuning":
        return tfa.PromptTuningConfig(num_virtual_tokens=20)
    return tfa.BottleneckConfig(variant=method)


def split_remat(method):
    """`(method, remat)`: `"lora_remat"` is `("lora", True)`."""
    if method.endswith(REMAT):
        return method[: -len(REMAT)], True
    return method, False


def build_trainer(shape, method, dtype, jit_compile):
    """A compiled next-token model whose trainable weights are `method`'s
    (a `_remat` method checkpoints the decoder blocks)."""
    method, remat = split_remat(method)
    backbone = build_backbone(shape, dtype)
    if method == "full":
        backbone.trainable = True
    elif method == "enable_lora":
        backbone.enable_lora(RANK, target_layer_names=TARGETS)
    else:
        tfa.add_adapter(backbone, adapter_config(method), name="bench")
    if remat:
        checkpoint_decoder_layers(backbone)
    model = LanguageModel(backbone)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def batch(shape, batch_size, sequence_length, seed=0):
    vocab = id_range(shape)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (batch_size, sequence_length + 1), "int32")
    x = {
        "token_ids": ids[:, :-1],
        "padding_mask": np.ones((batch_size, sequence_length), "int32"),
    }
    return x, ids[:, 1:]


def _trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def peers_that_fit(methods, dtype, gpu=False):
    """`methods` less the PyTorch peers this run cannot have, and why."""
    peers = [m for m in methods if m in PEERS]
    fits = ("mixed_bfloat16",) if gpu else ("float32",)
    why = None
    if peers and dtype not in fits:
        why = (
            f"{', '.join(peers)} left out: {' or '.join(fits)} only "
            f"{'on a GPU ' if gpu else ''}(this run: {dtype})"
        )
    elif peers:
        why = peer.available(gpu)
    if why is None:
        return list(methods), []
    return [m for m in methods if m not in PEERS], [why]


def _build(shape, methods, dtype, jit_compile, x, y, gpu=False):
    """{method: one training step}, {method: trainable params}, N, and
    what the PyTorch peer is (`None` without one)."""
    steps, params, n, info = {}, {}, None, None
    # Build every Keras model before the first step: building seeds the
    # global random state, which makes TensorFlow retrace functions traced
    # before.
    for method in methods:
        if method in PEERS:
            continue
        model = build_trainer(shape, method, dtype, jit_compile)
        params[method] = _trainable(model)
        steps[method] = lambda model=model: model.train_on_batch(x, y)
        n = n or matmul_params(model.backbone)
    if "peft_lora" in methods:
        # Built before the first step too (see above).
        base = build_backbone(shape)
        n = n or matmul_params(base)
        threads = peer.set_threads()
        # 0: TensorFlow's default, one thread per core.
        tf_threads = tf.config.threading.get_intra_op_parallelism_threads()
        step, params["peft_lora"], hf_params = peer.peft_lora_trainer(
            shape, x, y, RANK, device="cuda" if gpu else "cpu"
        )
        steps["peft_lora"] = step
        info = {
            "torch_threads": threads,
            "tf_threads": tf_threads,
            "hf_params": hf_params,
            "keras_params": base.count_params(),
            "targets": peer.lora_targets(shape),
            "device": "cuda, bfloat16 autocast" if gpu else "cpu, float32",
        }
    return {m: steps[m] for m in methods}, params, n, info


def _peak(sizes, torch_too, dtype="float32", gpu=False):
    """The best matmul FLOP/s of TensorFlow (and PyTorch) in `dtype`."""
    out = {"tensorflow": matmul_peak_flops(sizes, dtype=dtype)}
    if torch_too:
        device = "cuda" if gpu else "cpu"
        out["pytorch"] = peer.matmul_peak_flops(sizes, device=device)
    return out


def peak_dtype(dtype, gpu):
    """The matmul dtype MFU counts against: the policy's compute dtype on
    a GPU, float32 on the CPU (the issue's reference there)."""
    if not gpu:
        return "float32"
    return {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(
        dtype, dtype
    )


def _gpu_memory(reset=False):
    """TensorFlow's peak GPU memory in MiB (`None` without a GPU)."""
    if not tf.config.list_physical_devices("GPU"):
        return None
    if reset:
        tf.config.experimental.reset_memory_stats("GPU:0")
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def _rows(times, methods, steps, tokens, first, params, n, peak):
    rows = {}
    for method in methods:
        stats = summary(times[method])
        flops_per_token = (6 if method == "full" else 4) * n
        tokens_per_s = tokens / stats["median_s"]
        rows[method] = {
            **stats,
            "tokens_per_s": tokens_per_s,
            "first_step_s": first[method],
            "trainable_params": params[method],
            "mfu": flops_per_token * tokens_per_s / peak if peak else None,
        }
        others = [] if method == "full" else ["full"]
        if method == "lora":
            others += ["enable_lora", "peft_lora"]
        for other in others:
            if other in methods:
                rows[method][f"vs_{other}"] = paired_ratio(
                    times, method, other, steps
                )
    if "lora" in rows and "peft_lora" in rows:
        rows["lora"]["first_step_vs_peft_lora"] = (
            first["lora"] / first["peft_lora"]
        )
    return rows


def run(
    shape="gpt2_small",
    methods=METHODS,
    dtype="float32",
    jit_compile=True,
    batch_size=4,
    sequence_length=128,
    rounds=5,
    steps=2,
    peak_sizes=(1024, 2048),
    gpu=False,
):
    """Times every method's training step; returns a dict for the report.

    Each model is built and compiled, then its first step is timed alone
    (tracing and compilation for Keras; PyTorch has none), then two warm-up
    steps; then all methods run `rounds` interleaved rounds of `steps`
    steps each. The matmul peak (MFU's denominator) is measured in this
    process just before and just after the rounds, TensorFlow's and, with
    the PyTorch peer, PyTorch's; the best of them counts. `peak_sizes=None`
    leaves MFU out.

    `gpu=True` (`python -m bench --gpu`): the PyTorch peer runs on CUDA,
    the peak is measured in the run's compute dtype, and TensorFlow's peak
    GPU memory over the run is recorded.
    """
    x, y = batch(shape, batch_size, sequence_length)
    tokens = batch_size * sequence_length
    methods, notes = peers_that_fit(methods, dtype, gpu)
    _gpu_memory(reset=gpu)
    step_fns, params, n, peer_info = _build(
        shape, methods, dtype, jit_compile, x, y, gpu
    )
    first = {}
    for method, step in step_fns.items():
        start = time.perf_counter()
        step()
        first[method] = time.perf_counter() - start
        for _ in range(2):  # warm-up, not timed
            step()
    torch_too = peer_info is not None
    matmul_dtype = peak_dtype(dtype, gpu)

    def measure_peak():
        if not peak_sizes:
            return []
        return [_peak(peak_sizes, torch_too, matmul_dtype, gpu)]

    peaks = measure_peak()
    times = interleaved(step_fns, rounds, steps)
    peaks += measure_peak()
    peak = max((p for d in peaks for p in d.values()), default=None)
    rows = _rows(times, methods, steps, tokens, first, params, n, peak)
    del step_fns
    gc.collect()
    return {
        "shape": shape,
        "dtype": dtype,
        "jit_compile": jit_compile,
        "batch_size": batch_size,
        "sequence_length": sequence_length,
        "rounds": rounds,
        "steps_per_round": steps,
        "matmul_params": n,
        "peak_gflops": None if peak is None else peak / 1e9,
        "peak_dtype": matmul_dtype,
        "gpu": gpu,
        "gpu_peak_mb": _gpu_memory() if gpu else None,
        "peaks_gflops": [{k: v / 1e9 for k, v in d.items()} for d in peaks],
        "switch_cost": switch_cost(times, steps),
        "peer": peer_info,
        "notes": notes,
        "methods": rows,
    }


def memory(
    shape,
    method,
    dtype="float32",
    jit_compile=True,
    batch_size=4,
    sequence_length=128,
    steps=3,
):
    """Peak resident memory of a process that builds one model and runs
    `steps` training steps; tokens/s from the steps after the first
    (which traces and compiles)."""
    x, y = batch(shape, batch_size, sequence_length)
    before = peak_rss_mb()
    model = build_trainer(shape, method, dtype, jit_compile)
    built = peak_rss_mb()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - start)
    later = seconds[1:] or seconds
    return {
        "method": method,
        "peak_rss_mb": peak_rss_mb(),
        "after_build_mb": built,
        "before_build_mb": before,
        "steps_s": [round(t, 4) for t in seconds],
        "tokens_per_s": batch_size * sequence_length / float(np.median(later)),
    }
