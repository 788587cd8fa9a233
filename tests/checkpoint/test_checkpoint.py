import json
import os

import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.checkpoint import CONFIG_FILE
from tf_adapters.checkpoint import WEIGHTS_FILE
from tf_adapters.core.integrity import CorruptFileError
from tf_adapters.core.integrity import sha256_file

METHODS = ["lora", "dora", "pissa", "houlsby", "pfeiffer", "parallel"]
METHODS += ["ia3", "prompt"]


def _snapshot(backbone):
    return (type(backbone), [v.numpy().tobytes() for v in backbone.weights])


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_round_trip_onto_fresh_base(method, tmp_path):
    backbone = tiny_models.backbone("gpt2", seed=0)
    x = tiny_models.inputs()
    tfa.add_adapter(backbone, tiny_models.all_configs()[method], name="t")
    tiny_models.randomize_adapter(backbone)
    expected = np.asarray(backbone(x))
    tfa.save_adapter(backbone, str(tmp_path / "t"))
    assert sorted(os.listdir(tmp_path / "t")) == [CONFIG_FILE, WEIGHTS_FILE]

    fresh = tiny_models.backbone("gpt2", seed=0)
    fresh = tfa.load_adapter(fresh, str(tmp_path / "t"))
    assert tfa.list_adapters(fresh) == ["t"]
    np.testing.assert_allclose(np.asarray(fresh(x)), expected, atol=1e-6)
    assert len(fresh.trainable_weights) == len(backbone.trainable_weights)


def test_checkpoint_holds_only_adapter_variables(tmp_path):
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    tfa.save_adapter(backbone, str(tmp_path / "t"))
    meta = json.loads((tmp_path / "t" / CONFIG_FILE).read_text())
    assert sorted(meta["weights"]) == [
        f"transformer_layer_{i}/self_attention/{p}/lora_{m}"
        for i in range(2)
        for p in ("query", "value")
        for m in ("a", "b")
    ]
    assert meta["config"]["method"] == "lora"
    assert meta["base_model"]["class"] == "GPT2Backbone"
    with np.load(tmp_path / "t" / WEIGHTS_FILE, allow_pickle=False) as npz:
        n = sum(npz[k].size for k in npz.files)
    assert n == tfa.trainable_summary(backbone, print_fn=None).trainable


def test_trainable_layers_are_saved_and_restored(tmp_path):
    backbone = tiny_models.backbone(seed=0)
    x = tiny_models.inputs()
    cfg = tfa.LoraConfig(rank=2, trainable_layers=["^layer_norm$"])
    tfa.add_adapter(backbone, cfg, name="t")
    tiny_models.randomize_adapter(backbone)
    expected = np.asarray(backbone(x))
    tfa.save_adapter(backbone, str(tmp_path / "t"))
    meta = json.loads((tmp_path / "t" / CONFIG_FILE).read_text())
    assert "layer_norm/gamma" in meta["weights"]
    fresh = tfa.load_adapter(tiny_models.backbone(seed=0), str(tmp_path / "t"))
    np.testing.assert_allclose(np.asarray(fresh(x)), expected, atol=1e-6)


def test_gpt2_small_lora_checkpoint_is_under_1_5_mb(tmp_path):
    # GPT-2 small's shape with random weights: 12 layers, 768 wide.
    backbone = tiny_models.gpt2(
        vocabulary_size=50257,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        intermediate_dim=3072,
        max_sequence_length=1024,
    )
    cfg = tfa.LoraConfig(rank=8, alpha=16, target_layers=["query", "value"])
    tfa.add_adapter(backbone, cfg, name="task")
    summary = tfa.trainable_summary(backbone, print_fn=None)
    assert summary.trainable == 12 * 2 * (768 * 8 + 8 * 768)
    tfa.save_adapter(backbone, str(tmp_path / "task"))
    size = sum(f.stat().st_size for f in (tmp_path / "task").iterdir())
    assert size < 1.5e6, size


def test_loading_onto_another_shape_names_layer_and_shapes(tmp_path):
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    tfa.save_adapter(backbone, str(tmp_path / "t"))
    wider = tiny_models.gpt2(hidden_dim=16)
    snapshot = _snapshot(wider)
    with pytest.raises(
        ValueError,
        match=r"'transformer_layer_0/self_attention/query/lora_a' has shape "
        r"\(8, 2\) in the checkpoint but \(16, 2\)",
    ):
        tfa.load_adapter(wider, str(tmp_path / "t"))
    assert _snapshot(wider) == snapshot
    assert tfa.list_adapters(wider) == []


def test_loading_onto_another_family_is_rejected(tmp_path):
    backbone = tiny_models.backbone("gpt2")
    tfa.add_adapter(backbone, tfa.BottleneckConfig(bottleneck_size=4), "t")
    tfa.save_adapter(backbone, str(tmp_path / "t"))
    gemma = tiny_models.backbone("gemma")
    snapshot = _snapshot(gemma)
    with pytest.raises(
        ValueError, match="saved from a GPT2Backbone; this model is a Gemma"
    ):
        tfa.load_adapter(gemma, str(tmp_path / "t"))
    assert _snapshot(gemma) == snapshot

    # Llama has the same layer names and (here) the same shapes: the family
    # check still refuses it.
    llama = tiny_models.backbone("llama")
    with pytest.raises(ValueError, match="this model is a LlamaBackbone"):
        tfa.load_adapter(llama, str(tmp_path / "t"))
    assert tfa.list_adapters(llama) == []


def _saved(tmp_path):
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    path = tmp_path / "t"
    tfa.save_adapter(backbone, str(path))
    return path


def _rewrite_weights(path, **changes):
    """A crafted weights file whose recorded SHA-256 is updated too, so
    the checks behind the digest are what is tested."""
    with np.load(path / WEIGHTS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(path / WEIGHTS_FILE, **arrays)
    meta = json.loads((path / CONFIG_FILE).read_text())
    meta["weights_sha256"] = sha256_file(path / WEIGHTS_FILE)
    (path / CONFIG_FILE).write_text(json.dumps(meta))


def test_damaged_weights_files_name_the_file_and_change_nothing(tmp_path):
    path = _saved(tmp_path)
    weights = path / WEIGHTS_FILE
    meta = json.loads((path / CONFIG_FILE).read_text())
    assert meta["weights_sha256"] == sha256_file(weights)
    data = weights.read_bytes()
    fresh = tiny_models.backbone()
    snapshot = _snapshot(fresh)

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01  # one bit, inside an array's values
    weights.write_bytes(bytes(flipped))
    with pytest.raises(CorruptFileError, match="does not match the SHA-256"):
        tfa.load_adapter(fresh, str(path))

    weights.write_bytes(data[: len(data) // 2])  # cut short
    with pytest.raises(CorruptFileError, match=f"{weights}.*SHA-256"):
        tfa.load_adapter(fresh, str(path))
    # Without a recorded digest (older checkpoints), the cut is still
    # reported by name, not as a zip error.
    del meta["weights_sha256"]
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CorruptFileError, match=f"{weights}.*truncated"):
        tfa.load_adapter(fresh, str(path))
    assert _snapshot(fresh) == snapshot

    weights.write_bytes(data)  # the intact file loads, digest or not
    tfa.load_adapter(fresh, str(path))
    assert tfa.list_adapters(fresh) == ["t"]


def test_corrupt_checkpoints_are_rejected_before_any_change(tmp_path):
    path = _saved(tmp_path)
    key = "transformer_layer_0/self_attention/query/lora_a"
    fresh = tiny_models.backbone()
    snapshot = _snapshot(fresh)

    bad = np.full((8, 2), np.nan, "float32")
    _rewrite_weights(path, **{key: bad})
    with pytest.raises(ValueError, match=f"{key}.*NaN or Inf"):
        tfa.load_adapter(fresh, str(path))

    _rewrite_weights(path, **{key: np.zeros((8, 2), "int32")})
    with pytest.raises(ValueError, match=f"{key}.*dtype int32"):
        tfa.load_adapter(fresh, str(path))

    _rewrite_weights(path, **{key: np.zeros((8, 2), "float32"), "extra": bad})
    with pytest.raises(ValueError, match="disagree on variable 'extra'"):
        tfa.load_adapter(fresh, str(path))

    meta = json.loads((path / CONFIG_FILE).read_text())
    meta["format_version"] = 99
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version 99"):
        tfa.load_adapter(fresh, str(path))

    (path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        tfa.load_adapter(fresh, str(path))

    with pytest.raises(FileNotFoundError, match="not an adapter checkpoint"):
        tfa.load_adapter(fresh, str(tmp_path / "missing"))
    assert _snapshot(fresh) == snapshot


def test_pickled_weights_are_refused(tmp_path):
    path = _saved(tmp_path)
    key = "transformer_layer_0/self_attention/query/lora_a"
    obj = np.empty((1,), dtype=object)
    obj[0] = {"payload": 1}
    _rewrite_weights(path, **{key: obj})
    with pytest.raises(CorruptFileError, match="dtype object.*not unpickled"):
        tfa.load_adapter(tiny_models.backbone(), str(path))


def test_save_is_atomic_and_never_replaces_foreign_directories(tmp_path):
    backbone = tiny_models.backbone()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a tf_adapters checkpoint"):
        tfa.save_adapter(backbone, str(foreign))
    assert (foreign / "notes.txt").read_text() == "keep me"

    path = tmp_path / "t"
    tfa.save_adapter(backbone, str(path))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tfa.save_adapter(backbone, str(path), overwrite=False)
    tfa.save_adapter(backbone, str(path))  # overwriting our own is fine
    assert sorted(os.listdir(tmp_path)) == ["mine", "t"]


def test_load_errors_on_name_clash(tmp_path):
    path = _saved(tmp_path)
    backbone = tiny_models.backbone()
    tfa.load_adapter(backbone, str(path))
    with pytest.raises(ValueError, match="already has an adapter named 't'"):
        tfa.load_adapter(backbone, str(path))
    tfa.load_adapter(backbone, str(path), name="t2")
    assert tfa.list_adapters(backbone) == ["t", "t2"]
