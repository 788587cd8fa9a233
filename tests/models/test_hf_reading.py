"""Hugging Face checkpoint folders are read with every header checked
(issue 20): safetensors headers against their files, the shard index
against the shards, and `config.json` values against the types of the
`transformers` defaults."""

import json
import os

import numpy as np
import pytest
from fuzz import corpus

from tf_adapters import CorruptFileError
from tf_adapters.models.hf_convert.reading import HF_DEFAULTS
from tf_adapters.models.hf_convert.reading import Config
from tf_adapters.models.hf_convert.reading import SafetensorsLoader
from tf_adapters.models.hf_convert.reading import read_config_json


@pytest.fixture()
def folders(tmp_path):
    for name, data in corpus.hf_checkpoint().items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    return str(tmp_path / "single"), str(tmp_path / "sharded")


def _rewrite_header(path, change):
    data = open(path, "rb").read()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    change(header)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data[8 + size :])


def test_both_layouts_read_every_tensor(folders):
    for folder in folders:
        with SafetensorsLoader(folder) as loader:
            for key, (shape, _) in corpus.HF_TENSORS.items():
                value = loader.get(key, shape, prefixed=False)
                assert value.dtype == np.float32 and value.shape == shape
            loader.check_all_used()


def test_a_header_claiming_terabytes_is_refused_when_opened(folders):
    path = os.path.join(folders[0], "model.safetensors")
    key = "model.embed_tokens.weight"

    def claim(header):
        header[key]["shape"] = [10**6, 10**6]

    _rewrite_header(path, claim)
    with pytest.raises(CorruptFileError, match="model.safetensors .*10000"):
        SafetensorsLoader(folders[0])


def test_the_shard_index_must_match_the_shards(folders):
    sharded = folders[1]
    index = os.path.join(sharded, "model.safetensors.index.json")
    meta = json.load(open(index))
    key = "model.norm.weight"
    for shard, error, match in [
        ("model-00001-of-00002.safetensors", CorruptFileError, "does not hold"),
        ("../single/model.safetensors", CorruptFileError, "in its folder"),
        ("model-00009.safetensors", FileNotFoundError, "missing shard"),
    ]:
        changed = {**meta, "weight_map": {**meta["weight_map"], key: shard}}
        with open(index, "w") as f:
            json.dump(changed, f)
        with pytest.raises(error, match=match):
            SafetensorsLoader(sharded)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("hidden_size", "768", "hidden_size='768', where an integer"),
        ("num_hidden_layers", 0, "num_hidden_layers=0, where an integer"),
        ("dropout", float("nan"), "dropout=nan, where a number"),
        ("do_layer_norm_before", 1, "where true/false"),
        ("activation_function", ["relu"], "where a string"),
    ],
)
def test_config_values_must_have_the_defaults_types(folders, key, value, match):
    path = os.path.join(folders[0], "config.json")
    raw = json.load(open(path))
    raw[key] = value
    with open(path, "w") as f:
        json.dump(raw, f)
    config_path, raw = read_config_json(folders[0])
    config = Config(raw, HF_DEFAULTS["opt"], config_path)
    with pytest.raises(CorruptFileError, match=f"config.json .*{match}"):
        config[key]


def test_a_config_json_that_is_not_an_object_is_refused(folders):
    with open(os.path.join(folders[0], "config.json"), "w") as f:
        f.write('["opt"]')
    with pytest.raises(CorruptFileError, match="JSON array where a JSON obj"):
        read_config_json(folders[0])
