import os
import subprocess
import sys
import time

from tf_adapters.pipeline import xla_cache

COMPILE = """
import tensorflow as tf
f = tf.function(lambda x: tf.matmul(x, x) + 1.0, jit_compile=True)
print(float(f(tf.ones((4, 4)))[0, 0]))
"""


def test_the_users_own_flag_and_off_leave_the_environment_alone(tmp_path):
    own = {"TF_XLA_FLAGS": f"{xla_cache.FLAG}=/elsewhere"}
    assert xla_cache.enable(str(tmp_path), environ=own) is None
    assert own["TF_XLA_FLAGS"] == f"{xla_cache.FLAG}=/elsewhere"
    for value in ("off", "0", "OFF"):
        env = {xla_cache.CACHE_ENV: value}
        assert xla_cache.enable(str(tmp_path), environ=env) is None
        assert "TF_XLA_FLAGS" not in env


def test_other_xla_flags_are_kept_and_the_folder_is_per_tf_version(tmp_path):
    env = {"TF_XLA_FLAGS": "--tf_xla_auto_jit=2"}
    folder = xla_cache.enable(str(tmp_path), environ=env)
    assert (
        env["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=2 {xla_cache.FLAG}={folder}"
    )
    assert os.path.dirname(folder) == str(tmp_path)
    assert os.path.basename(folder).startswith("tf-")


def test_the_variables_choose_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv(xla_cache.CACHE_ENV, str(tmp_path / "mine"))
    assert xla_cache.default_directory() == str(tmp_path / "mine")
    monkeypatch.delenv(xla_cache.CACHE_ENV)
    monkeypatch.setenv("TF_ADAPTERS_CACHE", str(tmp_path / "cache"))
    assert xla_cache.default_directory() == str(tmp_path / "cache" / "xla")


def test_no_cache_without_room_on_the_disk(tmp_path):
    env = {}
    assert (
        xla_cache.enable(str(tmp_path), min_free_bytes=1 << 62, environ=env)
        is None
    )
    assert "TF_XLA_FLAGS" not in env


def test_prune_keeps_the_recent_entries_and_drops_stale_temporaries(tmp_path):
    now = time.time()
    sizes = {"a.pb": 40, "b.pb": 40, "c.pb": 40}
    for age, (name, size) in zip((3, 2.5, 2), sizes.items(), strict=True):
        age *= 3600  # hours: unused this hour
        path = tmp_path / "tf-x" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age, now - age))
    stale = tmp_path / "tf-x" / "d.pb.tmp123"
    stale.write_bytes(b"x" * 5)
    os.utime(stale, (now - 2 * xla_cache.STALE_TMP_SECONDS,) * 2)
    fresh = tmp_path / "tf-x" / "e.pb.tmp456"  # a run writing it now
    fresh.write_bytes(b"x" * 5)
    assert xla_cache.prune(str(tmp_path), max_bytes=80) == 45
    assert sorted(os.listdir(tmp_path / "tf-x")) == [
        "b.pb",
        "c.pb",
        "e.pb.tmp456",
    ]


def test_a_second_process_loads_the_compiled_program(tmp_path):
    env = dict(os.environ)
    env.pop("TF_XLA_FLAGS", None)
    folder = xla_cache.enable(str(tmp_path), environ=env)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_executable_persistor=1"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", COMPILE],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        for _ in range(2)
    ]
    assert [r.stdout.split()[-1] for r in runs] == ["5.0", "5.0"]
    assert "Serializing and saving cache entry" in runs[0].stderr
    assert "Loading cached entry" not in runs[0].stderr
    assert "Loading cached entry" in runs[1].stderr
    assert "Serializing and saving cache entry" not in runs[1].stderr
    assert len(os.listdir(folder)) == 1


def test_prune_keeps_entries_used_within_the_hour(tmp_path):
    now = time.time()
    for name, age in (("old.pb", 2 * 3600), ("recent.pb", 600), ("now.pb", 0)):
        path = tmp_path / name
        path.write_bytes(b"x" * 10)
        os.utime(path, (now - age, now - age))
    # Over the limit, but only the entry unused for two hours may go.
    assert xla_cache.prune(str(tmp_path), max_bytes=0) == 10
    assert sorted(os.listdir(tmp_path)) == ["now.pb", "recent.pb"]
