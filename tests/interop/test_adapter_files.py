"""Other tools' adapter files are checked before they are used (issue
20): a PEFT folder's `adapter_config.json` field by field and its
safetensors header against the file, a keras-hub `.lora.h5` file's
datasets against the file size. Damage is a `CorruptFileError` naming
the file, and the model is left as it was."""

import json
import os

import h5py
import numpy as np
import pytest
from fuzz import corpus

import tf_adapters as tfa
from tf_adapters.interop.lora_h5 import read_lora_h5


@pytest.fixture()
def peft(tmp_path):
    folder = tmp_path / "peft"
    folder.mkdir()
    for name, data in corpus.peft_folder().items():
        (folder / name).write_bytes(data)
    return folder


def _load(folder):
    backbone = corpus.tiny_backbone()
    with pytest.raises(tfa.CorruptFileError) as caught:
        tfa.load_adapter(backbone, str(folder))
    assert tfa.list_adapters(backbone) == []
    return str(caught.value)


def test_a_damaged_peft_config_is_named_not_taken_for_another_format(peft):
    (peft / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 2')
    assert "adapter_config.json (PEFT adapter config) is not valid" in _load(
        peft
    )


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("r", "eight", "r='eight', where an integer >= 1"),
        ("lora_alpha", -1, "lora_alpha=-1, where a number > 0"),
        ("target_modules", "(c_attn", "target_modules='(c_attn'"),
        ("rank_pattern", {"(?i)c_attn": 2}, "rank_pattern="),
        ("layers_to_transform", "0", "layers_to_transform='0'"),
    ],
)
def test_peft_config_fields_are_checked_by_type(peft, field, value, match):
    path = peft / "adapter_config.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, field: value}))
    message = _load(peft)
    assert match in message, message


def test_a_peft_header_claiming_terabytes_is_refused(peft):
    path = peft / "adapter_model.safetensors"
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [10**6, 10**6]
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])
    assert "(4000000000000 bytes)" in _load(peft)


def _lora_h5(path, a=None, rank=2):
    with h5py.File(path, "w") as f:
        if rank is not None:
            f["lora/vars/rank"] = rank
        if a is None:
            f["lora/3/vars/lora_kernel_a"] = np.ones((8, 2), "float32")
        else:
            f.create_dataset("lora/3/vars/lora_kernel_a", **a)
        f["lora/3/vars/lora_kernel_b"] = np.ones((2, 8), "float32")
    return str(path)


@pytest.mark.parametrize(
    "a, rank, match",
    [
        (
            {"shape": (10**6, 10**6), "dtype": "float32", "chunks": (1, 64)},
            2,
            r"shape \(1000000, 1000000\) .*more than the \d+-byte file",
        ),
        ({"data": np.ones((8, 2), "int32")}, 2, "dtype int32, which is not"),
        (None, None, "lacks an integer `lora/vars/rank`"),
        (None, 0, "has rank 0"),
    ],
)
def test_lora_h5_datasets_are_checked_before_they_are_read(
    tmp_path, a, rank, match
):
    path = _lora_h5(tmp_path / "a.lora.h5", a, rank)
    with pytest.raises(tfa.CorruptFileError, match=f"a.lora.h5 .*{match}"):
        read_lora_h5(path)
    assert os.path.getsize(path) < 100_000


def test_lora_h5_factors_read_back(tmp_path):
    rank, factors = read_lora_h5(_lora_h5(tmp_path / "a.lora.h5"))
    assert rank == 2 and sorted(factors) == [3]
    assert factors[3][0].shape == (8, 2) and factors[3][1].shape == (2, 8)
