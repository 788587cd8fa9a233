"""Atomic writes leave files and folders with the mode a plain `open` or
`mkdir` would give them (not `tempfile`'s private 0600 / 0700), so that
another user, such as TF Serving's, can read a SavedModel."""

import os
import stat

import pytest

from tf_adapters.core.atomic import atomic_directory
from tf_adapters.core.atomic import atomic_write_text


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_file_and_folder_follow_the_umask(tmp_path, umask):
    atomic_write_text(str(tmp_path / "report.json"), "{}")
    with atomic_directory(str(tmp_path / "model")) as tmp:
        atomic_write_text(os.path.join(tmp, "weights.txt"), "w")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file").write_text("x")
    assert _mode(tmp_path / "report.json") == _mode(plain / "file")
    assert _mode(tmp_path / "report.json") == 0o666 & ~umask
    assert _mode(tmp_path / "model") == _mode(plain) == 0o777 & ~umask
    assert (tmp_path / "model" / "weights.txt").read_text() == "w"
