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
"""

import os
import time
import warnings

from bench.shapes import dims

PEFT_TARGETS = {"gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"]}


def available():
    """`None` when torch, transformers and peft import, else why not."""
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as error:
        return f"PyTorch peers left out: {error}"
    return None


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


def peft_lora_trainer(shape, x, y, rank, learning_rate=1e-4):
    """PEFT LoRA of `rank` (alpha = rank) on `shape`: returns (one
    training step, trainable params, the base model's params).

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
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    ids = torch.from_numpy(x["token_ids"]).long()
    mask = torch.from_numpy(x["padding_mask"]).long()
    labels = torch.from_numpy(y).long().reshape(-1)

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels
        )
        loss.backward()
        optimizer.step()
        return loss.item()

    trainable = int(sum(p.numel() for p in params))
    return step, trainable, base_params


def generator(shape):
    """Greedy decoding with `generate` on a random-weight `shape` model:
    returns (`call_for(prompt_ids, new_tokens)`, the model's params).

    `call_for` gives the call that makes exactly `new_tokens` tokens for
    every row of `prompt_ids` (B, prompt length): KV cache on, no stop
    token, like keras-hub's `generate` with `stop_token_ids=None`.
    """
    import torch

    model = build_model(shape).eval()

    def call_for(prompt_ids, new_tokens):
        ids = torch.from_numpy(prompt_ids).long()

        def call():
            with torch.inference_mode():
                return model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=False,
                    use_cache=True,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    eos_token_id=None,
                    pad_token_id=0,
                )

        return call

    return call_for, param_count(model)


def matmul_peak_flops(sizes=(1024, 2048), repeats=5):
    """PyTorch's best float32 matmul FLOP/s on square matrices."""
    import torch

    best = 0.0
    for size in sizes:
        a = torch.randn(size, size)
        b = torch.randn(size, size)
        torch.mm(a, b)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best
