"""The PyTorch peers: the bench's shapes as Hugging Face `transformers`
models with random weights, trained with PEFT LoRA and decoded with
`generate`, timed in the same rounds as the Keras rows.

Each shape maps to the `transformers` configuration of the same
architecture and size (`hf_config`; the parameter counts are compared in
every run). Nothing is downloaded. The LoRA row uses our `lora` row's rank,
alpha and targets where the architecture has them: Llama's `q_proj` and
`v_proj` are keras-hub's `query` and `value`; GPT-2 fuses query, key and
value in one `c_attn` projection, so PEFT's LoRA there (PEFT's own default
target for GPT-2) adapts the key too; it has the same trainable parameter
count as ours (8 · (768 + 3 · 768) per layer = 2 · 8 · (768 + 768)).

Threads: `torch.set_num_threads(os.cpu_count())`, like TensorFlow's
default pool. Both pools live in the one process; only one framework runs
at a time, and `bench.train` measures what switching costs.

On a GPU (`python -m bench --gpu`) the peers run on CUDA under
`torch.autocast(dtype=torch.bfloat16)`, float32 weights with bfloat16
matmuls as Keras's `mixed_bfloat16` policy, and every timed call waits for
the device (`.item()`, `.cpu()`).
"""

import os
import time
import warnings

from bench.shapes import dims

PEFT_TARGETS = {"gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"]}


def available(gpu=False):
    """`None` when torch, transformers and peft import (and, with `gpu`,
    PyTorch sees a CUDA device), else why not."""
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as error:
        return f"PyTorch peers left out: {error}"
    return cuda_missing() if gpu else None


def cuda_missing():
    """`None` when PyTorch sees a CUDA device, else why the GPU peers are
    left out."""
    import torch

    if not torch.cuda.is_available():
        return (
            "PyTorch peers left out: PyTorch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda or 'none'})"
        )
    return None


def _autocast(device):
    """The mixed-precision context of a GPU peer (bfloat16 matmuls, as
    `mixed_bfloat16`); a no-op on the CPU, where the peers are float32."""
    import contextlib

    import torch

    if device == "cpu":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def set_threads():
    """One intra-op thread per core, as TensorFlow uses; returns them."""
    import torch

    torch.set_num_threads(os.cpu_count())
    return torch.get_num_threads()


def hf_config(shape):
    """The `transformers` configuration of a `bench.shapes` shape, from the
    same dimensions (`bench.shapes.DIMS`) as the keras-hub backbone."""
    import transformers

    d = dims(shape)
    if d["family"] == "gpt2":
        # keras-hub's GPT-2: tanh GELU ("gelu_new"), dropout 0.1, like
        # these defaults.
        return transformers.GPT2Config(
            vocab_size=d["vocabulary"],
            n_positions=d["max_length"],
            n_embd=d["hidden"],
            n_layer=d["layers"],
            n_head=d["heads"],
            n_inner=d["intermediate"],
            bos_token_id=0,
            eos_token_id=0,
        )
    return transformers.LlamaConfig(
        vocab_size=d["vocabulary"],
        hidden_size=d["hidden"],
        intermediate_size=d["intermediate"],
        num_hidden_layers=d["layers"],
        num_attention_heads=d["heads"],
        num_key_value_heads=d["kv_heads"],
        rope_theta=d["rope_wavelength"],
        rms_norm_eps=d["norm_epsilon"],
        tie_word_embeddings=d["tied"],
    )


def build_model(shape, seed=0):
    """A random-weight causal LM of `shape` (float32)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = hf_config(shape)
    return transformers.AutoModelForCausalLM.from_config(config)


def param_count(model):
    """Parameters, each counted once (tied embeddings are one)."""
    return int(sum(p.numel() for p in model.parameters()))


def lora_targets(shape):
    """PEFT's `target_modules` for our `lora` row's targets on `shape`."""
    return PEFT_TARGETS["llama" if shape == "smollm2_135m" else "gpt2"]


def peft_lora_trainer(shape, x, y, rank, learning_rate=1e-4, device="cpu"):
    """PEFT LoRA of `rank` (alpha = rank) on `shape`: returns (one
    training step, trainable params, the base model's params).

    `device="cuda"` trains on the GPU under bfloat16 autocast.

    A step is what Keras's `train_on_batch` does: forward in training mode
    (dropout on, as keras-hub's), mean cross-entropy of the logits, backward
    and an Adam step (the Keras rows' optimizer, same learning rate), then
    the loss as a Python float.
    """
    import peft
    import torch

    model = build_model(shape)
    base_params = param_count(model)
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=rank,
        lora_dropout=0.0,
        target_modules=lora_targets(shape),
        # GPT-2's Conv1D weights are (in, out).
        fan_in_fan_out=model.config.model_type == "gpt2",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # PEFT 0.21 calls a transformers 5 name deprecated for v6.
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing`", FutureWarning
        )
        model = peft.get_peft_model(model, config)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    ids = torch.from_numpy(x["token_ids"]).long().to(device)
    mask = torch.from_numpy(x["padding_mask"]).long().to(device)
    labels = torch.from_numpy(y).long().reshape(-1).to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device):
            logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels
        )
        loss.backward()
        optimizer.step()
        return loss.item()  # waits for the device

    trainable = int(sum(p.numel() for p in params))
    return step, trainable, base_params


def generator(shape, device="cpu"):
    """Greedy decoding with `generate` on a random-weight `shape` model:
    returns (`call_for(prompt_ids, new_tokens)`, the model's params).
    `device="cuda"` decodes on the GPU under bfloat16 autocast.

    `call_for` gives the call that makes exactly `new_tokens` tokens for
    every row of `prompt_ids` (B, prompt length): KV cache on, no stop
    token, like keras-hub's `generate` with `stop_token_ids=None`.
    """
    import torch

    model = build_model(shape).to(device).eval()

    def call_for(prompt_ids, new_tokens):
        ids = torch.from_numpy(prompt_ids).long().to(device)

        def call():
            with torch.inference_mode(), _autocast(device):
                out = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=False,
                    use_cache=True,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    eos_token_id=None,
                    pad_token_id=0,
                )
            return out.cpu()  # waits for the device

        return call

    return call_for, param_count(model)


def matmul_peak_flops(sizes=(1024, 2048), repeats=5, device="cpu"):
    """PyTorch's best matmul FLOP/s on square matrices: float32 on the
    CPU, bfloat16 on a GPU (the peers' compute dtype there)."""
    import torch

    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        torch.mm(a, b)[0, 0].item()
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)[0, 0].item()  # one number back: waits for it
            best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best
