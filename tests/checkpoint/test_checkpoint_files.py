"""An adapter checkpoint's two files are checked before the model changes
(issue 20): the weights' `.npy` headers against the bytes they hold, the
config's fields by type, and its adapter config by building it. Damage is
a `CorruptFileError` naming the file."""

import io
import json
import re
import zipfile

import pytest
from fuzz import corpus

import tf_adapters as tfa
from tf_adapters.checkpoint import CONFIG_FILE
from tf_adapters.checkpoint import WEIGHTS_FILE


@pytest.fixture()
def saved(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    for name, data in corpus.adapter_checkpoint().items():
        (folder / name).write_bytes(data)
    meta = json.loads((folder / CONFIG_FILE).read_text())
    del meta["weights_sha256"]  # older checkpoints: the headers are checked
    (folder / CONFIG_FILE).write_text(json.dumps(meta))
    return folder


def _refused(folder, match):
    backbone = corpus.tiny_backbone()
    with pytest.raises(tfa.CorruptFileError, match=match):
        tfa.load_adapter(backbone, str(folder))
    assert tfa.list_adapters(backbone) == []


def test_a_weights_header_claiming_terabytes_is_refused(saved):
    weights = saved / WEIGHTS_FILE
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(weights.read_bytes())) as source:
        with zipfile.ZipFile(out, "w") as archive:
            for info in source.infolist():
                member = source.read(info)
                end = member.index(b"\n")  # the header, padded with spaces
                header = re.sub(
                    rb"'shape': \(.*?\)",
                    b"'shape': (1000000000000,)",
                    member[:end],
                )
                archive.writestr(info, header[:end].ljust(end) + member[end:])
    weights.write_bytes(out.getvalue())
    _refused(saved, f"{WEIGHTS_FILE} .*shape \\(1000000000000,\\).*holds")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.update(weights=[]), "lacks the field 'weights'"),
        (lambda m: m.update(adapter_name=7), "lacks the field 'adapter_name'"),
        (lambda m: m["config"].update(rank="2"), "cannot be built .*rank"),
        (lambda m: m["config"].update(method=[1]), "cannot be built"),
        (lambda m: m.update(format="peft"), "is not a tf_adapters adapter"),
    ],
)
def test_config_fields_are_checked_before_the_model_changes(
    saved, change, match
):
    path = saved / CONFIG_FILE
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    _refused(saved, f"{CONFIG_FILE} .*{match}")


def test_a_key_given_twice_is_refused(saved):
    path = saved / CONFIG_FILE
    text = path.read_text().rstrip()
    path.write_text(text[:-1] + ', "adapter_name": "other"}')
    _refused(saved, "the key 'adapter_name' appears twice")
