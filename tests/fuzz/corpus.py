"""The real small files the fuzzers mutate, written by the writers users'
files come from: `save_adapter` (both formats) and `save_train_state` on
tiny models, keras-hub's `save_lora_weights`, `safetensors.numpy.save_file`,
the `gguf` package's `GGUFWriter`, YAML / JSON dumps of a run's options,
and JSONL / CSV / TXT files of built-in records.

Each builder writes into a fresh folder and returns `{relative path:
bytes}`. Builders that need a model build it once per process.
"""

import csv
import functools
import io
import json
import os
import shutil
import tempfile

import numpy as np

SEED_RECORDS = 20


@functools.cache
def tiny_backbone():
    """A one-layer GPT-2 backbone (built once)."""
    import keras
    import tiny_models

    keras.utils.set_random_seed(0)
    return tiny_models.gpt2(num_layers=1)


def _adapted(config):
    """A fresh one-layer GPT-2 backbone with adapter `t` of `config`."""
    import keras
    import tiny_models

    import tf_adapters as tfa

    keras.utils.set_random_seed(0)
    backbone = tiny_models.gpt2(num_layers=1)
    return tfa.add_adapter(backbone, config, "t")


def _read_tree(folder):
    """`{relative path: bytes}` of the files under `folder`, which is then
    removed (with the temporary folder `_fresh_folder` made for it)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    shutil.rmtree(os.path.dirname(folder))
    return found


def _fresh_folder(name):
    return os.path.join(tempfile.mkdtemp(prefix="fuzz-seed-"), name)


@functools.cache
def adapter_checkpoint():
    """`adapter_config.json` + `adapter_weights.npz` of a LoRA adapter."""
    import tf_adapters as tfa

    backbone = _adapted(tfa.LoraConfig(rank=2, target_layers=["query"]))
    path = _fresh_folder("adapter")
    tfa.save_adapter(backbone, path)
    return _read_tree(path)


@functools.cache
def peft_folder():
    """PEFT's `adapter_config.json` + `adapter_model.safetensors` of a
    LoRA adapter, written by `save_adapter(..., format="peft")`."""
    import tf_adapters as tfa

    backbone = _adapted(tfa.LoraConfig(rank=2, target_layers=["query"]))
    path = _fresh_folder("peft")
    tfa.save_adapter(backbone, path, format="peft")
    return _read_tree(path)


@functools.cache
def training_state():
    """`state.json` + `state.npz` of a compiled tiny model (weights, a
    dropout seed state, Adam's slots and iteration count)."""
    import keras

    import tf_adapters as tfa
    from tf_adapters.training.checkpointing import save_train_state

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.1)]
    )
    model.compile(optimizer="adam", loss="mse")
    path = _fresh_folder("train_state")
    save_train_state(model, path, 1, 4, tfa.FinetuneConfig())
    return _read_tree(path)


@functools.cache
def lora_h5():
    """A keras-hub `.lora.h5` file (`enable_lora` + `save_lora_weights`)."""
    import keras
    import tiny_models

    keras.utils.set_random_seed(0)
    backbone = tiny_models.gpt2(num_layers=1)
    backbone.enable_lora(2, target_layer_names=["query"])
    path = _fresh_folder("lora")
    os.makedirs(path)
    backbone.save_lora_weights(os.path.join(path, "a.lora.h5"))
    return _read_tree(path)


# A tiny Hugging Face checkpoint: float32 and float16 tensors.
HF_TENSORS = {
    "model.embed_tokens.weight": ((16, 8), "float32"),
    "model.layers.0.self_attn.q_proj.weight": ((8, 8), "float32"),
    "model.layers.0.self_attn.q_proj.bias": ((8,), "float16"),
    "model.layers.0.mlp.down_proj.weight": ((8, 12), "float16"),
    "model.norm.weight": ((8,), "float32"),
}


@functools.cache
def hf_checkpoint():
    """`single/` (`config.json` + `model.safetensors`) and `sharded/`
    (`model.safetensors.index.json` + two shards) checkpoints."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {
        k: rng.standard_normal(shape).astype(dtype)
        for k, (shape, dtype) in HF_TENSORS.items()
    }
    root = _fresh_folder("hf")
    single, sharded = (
        os.path.join(root, "single"),
        os.path.join(root, "sharded"),
    )
    os.makedirs(single)
    os.makedirs(sharded)
    save_file(tensors, os.path.join(single, "model.safetensors"))
    config = {"model_type": "opt", "hidden_size": 8, "vocab_size": 16}
    with open(os.path.join(single, "config.json"), "w") as f:
        json.dump(config, f)
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:2]}
    shards["model-00002-of-00002.safetensors"] = names[2:]
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, os.path.join(sharded, shard))
        weight_map.update(dict.fromkeys(keys, shard))
    with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    return _read_tree(root)


GGUF_TOKENS = ["<unk>", "<s>", "</s>", "a", "b", "ab", "c", "abc"]


def write_gguf(path, **changes):
    """Writes a one-layer Llama GGUF (hidden 8, 2 query heads, 1 key/value
    head, 8 tokens, byte-level BPE), float32 with one Q8_0 tensor, to
    `path`. `changes` override its metadata (`block_count`, `head_count`,
    `tokens`, `bos_token_id`) or a tensor's shape (`attn_k`)."""
    import gguf

    d, ffn = 8, 32
    meta = {"block_count": 1, "head_count": 2, "tokens": GGUF_TOKENS}
    meta.update({"bos_token_id": 1, "attn_k": (4, d), **changes})
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(meta["block_count"])
    writer.add_embedding_length(d)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(meta["head_count"])
    writer.add_head_count_kv(1)
    writer.add_context_length(64)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(meta["tokens"])
    writer.add_token_merges(["a b", "ab c"])
    writer.add_token_types([2, 3, 3, 1, 1, 1, 1, 1][: len(meta["tokens"])])
    writer.add_bos_token_id(meta["bos_token_id"])
    writer.add_eos_token_id(2)

    def tensor(name, shape):
        writer.add_tensor(name, rng.standard_normal(shape).astype("float32"))

    tensor("token_embd.weight", (len(GGUF_TOKENS), d))
    tensor("output_norm.weight", (d,))
    for name, shape in (
        ("attn_norm", (d,)),
        ("ffn_norm", (d,)),
        ("attn_q", (d, d)),
        ("attn_k", meta["attn_k"]),
        ("attn_v", (4, d)),
        ("attn_output", (d, d)),
        ("ffn_gate", (ffn, d)),
        ("ffn_up", (ffn, d)),
    ):
        tensor(f"blk.0.{name}.weight", shape)
    down = rng.standard_normal((d, ffn)).astype("float32")
    q8 = gguf.GGMLQuantizationType.Q8_0
    writer.add_tensor(
        "blk.0.ffn_down.weight", gguf.quants.quantize(down, q8), raw_dtype=q8
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@functools.cache
def gguf_model():
    """`model.gguf` written by `write_gguf`."""
    path = _fresh_folder("gguf")
    os.makedirs(path)
    write_gguf(os.path.join(path, "model.gguf"))
    return _read_tree(path)


OPTIONS = {
    "task": "classification",
    "method": "lora",
    "steps": 8,
    "batch_size": 4,
    "learning_rate": 0.001,
    "rank": 4,
    "target_layers": ["query", "value"],
    "adapter": {"dropout": 0.1, "use_rslora": True},
    "labels": ["negative", "positive"],
    "checkpoint_every": 4,
    "seed": 1,
}


@functools.cache
def options_files():
    """`run.yaml` and `run.json`: one run's options."""
    import yaml

    return {
        "run.yaml": yaml.safe_dump(OPTIONS, sort_keys=False).encode(),
        "run.json": json.dumps(OPTIONS, indent=2).encode(),
    }


@functools.cache
def data_files():
    """`data.jsonl`, `data.csv` and `data.txt` of the first built-in
    sentiment records."""
    from tf_adapters.data.builtin import sentiment_records

    records = sentiment_records()[:SEED_RECORDS]
    jsonl = "".join(json.dumps(r) + "\n" for r in records)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["text", "label"])
    writer.writeheader()
    writer.writerows(records)
    text = "".join(r["text"] + "\n" for r in records)
    return {
        "data.jsonl": jsonl.encode(),
        "data.csv": out.getvalue().encode(),
        "data.txt": text.encode(),
    }
