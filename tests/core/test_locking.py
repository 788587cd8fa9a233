"""The output folder's lock: a second holder is refused with the owner's
pid, host and start time; a lock whose owner is gone (not running, or an
unreadable file) is taken over; another host's lock is left alone."""

import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from tf_adapters.core.locking import LOCK_FILE
from tf_adapters.core.locking import FolderLockedError
from tf_adapters.core.locking import folder_lock


def test_a_second_run_is_refused_and_the_lock_released(tmp_path):
    folder = tmp_path / "run"
    with folder_lock(str(folder)) as path:
        owner = json.loads(open(path).read())
        assert owner["pid"] == os.getpid()
        assert owner["host"] == socket.gethostname()
        with pytest.raises(FolderLockedError, match="in use by another run"):
            with folder_lock(str(folder)):
                pass
        assert os.path.exists(path)  # the refused one left it alone
    assert not folder.exists()  # created here, left empty: removed

    folder.mkdir()
    with pytest.raises(RuntimeError):
        with folder_lock(str(folder)):
            raise RuntimeError("the run failed")
    assert os.listdir(folder) == []  # released on errors too


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    "content, logged",
    [
        (None, "is not running"),
        ("{not json", "unreadable lock file"),
    ],
)
def test_a_stale_lock_is_taken_over(tmp_path, caplog, content, logged):
    if content is None:
        content = json.dumps(
            {
                "pid": _dead_pid(),
                "host": socket.gethostname(),
                "started": "2020-01-01T00:00:00+00:00",
            }
        )
    (tmp_path / LOCK_FILE).write_text(content)
    with caplog.at_level(logging.WARNING, "tf_adapters.core.locking"):
        with folder_lock(str(tmp_path)) as path:
            assert json.loads(open(path).read())["pid"] == os.getpid()
    assert logged in caplog.text
    assert os.listdir(tmp_path) == []


def test_another_hosts_lock_is_left_alone(tmp_path):
    content = json.dumps(
        {"pid": 1, "host": "elsewhere", "started": "2020-01-01T00:00:00"}
    )
    (tmp_path / LOCK_FILE).write_text(content)
    with pytest.raises(FolderLockedError, match="another host.*delete"):
        with folder_lock(str(tmp_path)):
            pass
    assert (tmp_path / LOCK_FILE).read_text() == content
