"""Two loads of one GGUF file at once on an empty cache convert it once
and share the preset; no half-written preset is ever visible."""

import os
import threading
import time

from tf_adapters.models import loading
from tf_adapters.models.gguf import convert

FILES = ["config.json", "model.weights.h5", "tokenizer.json"]


class SlowPreset:
    """Stands for a converted model: writes its preset a file at a time."""

    def save_to_preset(self, folder):
        for name in FILES:
            with open(os.path.join(folder, name), "w") as f:
                f.write(name)
            time.sleep(0.1)


def test_concurrent_loads_convert_once_and_share_the_preset(
    tmp_path, monkeypatch
):
    calls = []
    monkeypatch.setattr(
        convert, "convert_gguf", lambda path: calls.append(path) or SlowPreset()
    )
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    cache = tmp_path / "cache"
    start, done = threading.Barrier(2), threading.Event()
    found, half_written = [], []

    def load():
        start.wait()
        found.append(loading.gguf_preset(str(gguf), str(cache)))

    def watch():  # every visible preset folder is whole
        presets = cache / "presets"
        while not done.is_set():
            for entry in os.listdir(presets) if presets.exists() else ():
                folder = presets / entry
                if entry.startswith(".") or not folder.is_dir():
                    continue
                names = set(os.listdir(folder))
                if names != {*FILES, loading.STAMP_FILE}:
                    half_written.append(names)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    loaders = [threading.Thread(target=load) for _ in range(2)]
    for thread in loaders:
        thread.start()
    for thread in loaders:
        thread.join(timeout=60)
    done.set()
    watcher.join()

    assert len(calls) == 1
    assert len(found) == 2 and found[0] == found[1]
    assert not half_written
    name = os.path.basename(found[0])
    assert sorted(os.listdir(cache / "presets")) == [name, f"{name}.lock"]
