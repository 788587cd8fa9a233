"""Reads files in a fresh process and reports each read's peak memory.

Run as `python memory_probe.py '{"warm": [[reader, path], ...], "cases":
[[reader, path, claim], ...]}'`; prints a JSON list of rows `{reader,
path, claim, outcome, rss_growth_mb, seconds, method}`. The growth is the peak
resident memory during the read less the resident memory before it: the
kernel's high-water mark (`VmHWM`, what `ru_maxrss` reports) is reset
before each read through `/proc/self/clear_refs`, after warm-up reads of
small valid files (imports, caches). Where it cannot be reset, the growth
of `ru_maxrss` is reported, which misses what stays under an earlier peak
(the control row shows whether the measurement sees a real allocation).

Only the reader modules are imported, not `tf_adapters/__init__` (which
imports TensorFlow): each package is registered as an empty namespace, so
the probe starts in a fraction of a second.
"""

import json
import os
import resource
import sys
import time
import types

PACKAGE = os.path.join(
    os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ),
    "tf_adapters",
)


def _bare_packages():
    """Registers every `tf_adapters` package without running its
    `__init__`."""
    root = os.path.dirname(PACKAGE)
    for folder, _, names in os.walk(PACKAGE):
        if "__init__.py" in names:
            name = os.path.relpath(folder, root).replace(os.sep, ".")
            module = types.ModuleType(name)
            module.__path__ = [folder]
            sys.modules[name] = module


def _readers():
    from tf_adapters.core import safetensors_file
    from tf_adapters.core.npz_file import load_npz
    from tf_adapters.interop.lora_h5 import read_lora_h5
    from tf_adapters.models.gguf.gguf_reader import read_llama_gguf

    def safetensors(path):
        header = safetensors_file.read_header(path, "probe", "probe")
        return safetensors_file.read_tensors(header)

    return {
        "npz": lambda path: load_npz(path, None, "probe", "probe"),
        "gguf": read_llama_gguf,
        "safetensors": safetensors,
        "lora_h5": read_lora_h5,
    }


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _start():
    """`(baseline MB a read's growth is measured from, method)`."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS
        return _status_kb("VmRSS") / 1024, "VmHWM reset"
    except OSError:
        return _peak_mb(), "ru_maxrss"


def _peak_mb():
    try:
        return _status_kb("VmHWM") / 1024
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read(reader, path):
    try:
        reader(path)
    except Exception as e:  # reported, not judged, here
        return type(e).__name__
    return "accepted"


def main(warm, cases):
    readers = _readers()
    for reader, path in warm:
        _read(readers[reader], path)
    rows = []
    for reader, path, claim in cases:
        before, method = _start()
        start = time.perf_counter()
        outcome = _read(readers[reader], path)
        rows.append(
            {
                "reader": reader,
                "path": path,
                "claim": claim,
                "outcome": outcome,
                "rss_growth_mb": round(_peak_mb() - before, 1),
                "seconds": round(time.perf_counter() - start, 4),
                "method": method,
            }
        )
    return rows


if __name__ == "__main__":
    _bare_packages()
    print(json.dumps(main(**json.loads(sys.argv[1]))))
