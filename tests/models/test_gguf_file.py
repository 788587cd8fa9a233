"""GGUF files are read with every declared length checked against the
file and every tensor against the model it describes (issue 20). The
parser is compared with the `gguf` package's own reader, and a tiny
file converts into a working keras-hub model."""

import os
import struct
import time

import gguf
import numpy as np
import pytest
from fuzz import corpus

from tf_adapters import CorruptFileError
from tf_adapters.models.gguf.convert import convert_gguf
from tf_adapters.models.gguf.gguf_file import read_gguf
from tf_adapters.models.gguf.gguf_reader import read_llama_gguf


@pytest.fixture()
def tiny(tmp_path):
    return corpus.write_gguf(str(tmp_path / "tiny.gguf"))


def _patched(path, name, offset, value, fmt="<Q"):
    """Rewrites the field `offset` bytes after `name` (a key or tensor
    name) of GGUF file `path`."""
    data = bytearray(open(path, "rb").read())
    struct.pack_into(fmt, data, data.rindex(name) + len(name) + offset, value)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_the_parser_agrees_with_the_gguf_package(tiny):
    ours, theirs = read_gguf(tiny), gguf.GGUFReader(tiny)
    fields = {k: f.contents() for k, f in theirs.fields.items()}
    assert ours.fields == {k: v for k, v in fields.items() if "GGUF." not in k}
    assert sorted(ours.tensors) == sorted(t.name for t in theirs.tensors)
    for tensor in theirs.tensors:
        info = ours.tensors[tensor.name]
        assert (info.offset, info.nbytes) == (
            tensor.data_offset,
            tensor.n_bytes,
        )
        expected = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        np.testing.assert_array_equal(ours.dequantize(tensor.name), expected)


def test_a_tiny_gguf_converts_into_a_working_model(tiny):
    source = read_llama_gguf(tiny)
    assert source.config["num_layers"] == 1
    assert source.config["vocabulary_size"] == len(corpus.GGUF_TOKENS)
    model = convert_gguf(tiny, sequence_length=8)
    logits = model(
        {
            "token_ids": np.array([[1, 3, 4, 5]]),
            "padding_mask": np.ones((1, 4), bool),
        }
    )
    assert logits.shape == (1, 4, 8)
    assert np.all(np.isfinite(np.asarray(logits)))


@pytest.mark.parametrize(
    "name, offset, value, fmt, match",
    [
        (
            b"token_embd.weight",
            12,
            10**12 // 8,
            "<Q",
            r"of shape \(125000000000",
        ),
        (
            b"general.architecture",
            4,
            2**62,
            "<Q",
            "a string of 4611686018427387904",
        ),
        (b"tokenizer.ggml.tokens", 8, 2**62, "<Q", "strings cannot fit"),
        (
            b"tokenizer.ggml.token_type",
            8,
            2**62,
            "<Q",
            "array items cannot fit",
        ),
        (b"token_embd.weight", 0, 5, "<I", "has 5 dimensions"),
        (b"token_embd.weight", 20, 99, "<I", "unknown GGML type 99"),
        (b"token_embd.weight", 24, 3, "<Q", "unaligned offset"),
        (b"output_norm.weight", 16, 0, "<Q", "overlapping another"),
        (b"llama.block_count", 0, 42, "<I", "a value of unknown type 42"),
    ],
)
def test_header_claims_beyond_the_file_are_refused_at_once(
    tiny, name, offset, value, fmt, match
):
    _patched(tiny, name, offset, value, fmt)
    start = time.perf_counter()
    with pytest.raises(CorruptFileError, match=f"tiny.gguf .*{match}"):
        read_llama_gguf(tiny)
    assert time.perf_counter() - start < 0.5


def test_truncated_and_foreign_files_are_refused(tiny):
    data = open(tiny, "rb").read()
    for cut, match in [
        (len(data) - 100, "past the end of the"),
        (600, "runs past the end"),
        (10, "too short for a GGUF header"),
    ]:
        with open(tiny, "wb") as f:
            f.write(data[:cut])
        with pytest.raises(CorruptFileError, match=match):
            read_llama_gguf(tiny)
    with open(tiny, "wb") as f:
        f.write(b"GGML" + data[4:])
    with pytest.raises(CorruptFileError, match="GGUF magic"):
        read_llama_gguf(tiny)


def test_a_repeated_metadata_key_is_refused(tiny):
    data = open(tiny, "rb").read()
    # Two keys of one length: the context length becomes a second
    # architecture.
    data = data.replace(b"llama.context_length", b"general.architecture")
    with open(tiny, "wb") as f:
        f.write(data)
    with pytest.raises(
        CorruptFileError, match="'general.architecture' appears"
    ):
        read_llama_gguf(tiny)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"block_count": 10**9}, "1000000000 layers but holds 11 tensors"),
        ({"head_count": 3}, "the heads must divide the hidden size"),
        ({"tokens": corpus.GGUF_TOKENS[:5]}, "lacks a list of 8 tokenizer"),
        ({"bos_token_id": 99}, "bos token id 99, outside the vocabulary"),
        ({"attn_k": (6, 8)}, r"'blk.0.attn_k.weight' of shape \(6, 8\)"),
    ],
)
def test_hyperparameters_tensors_and_tokenizer_must_agree(
    tmp_path, changes, match
):
    path = corpus.write_gguf(str(tmp_path / "tiny.gguf"), **changes)
    start = time.perf_counter()
    with pytest.raises(CorruptFileError, match=match):
        read_llama_gguf(path)
    assert time.perf_counter() - start < 0.5
    assert os.path.getsize(path) < 10_000
