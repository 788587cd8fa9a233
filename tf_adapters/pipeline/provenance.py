"""What a result needs to be reproduced: the options, the data's hash, the
package versions and the machine. `report.json`, `compare.json` and
`sweep.json` carry it under `"reproduce"`.

Example:
>>> from tf_adapters.pipeline import provenance
>>> provenance.records_sha256([{"text": "a", "label": 1}])[:12]
'290a14a00594'
>>> sorted(provenance.versions())[:3]
['keras', 'keras_hub', 'numpy']
>>> provenance.machine()["cpu_count"] >= 1
True
"""

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform

# Distributions whose versions shape a result (import name → PyPI name).
PACKAGES = {
    "keras": "keras",
    "keras_hub": "keras-hub",
    "numpy": "numpy",
    "tensorflow": "tensorflow",
    "tensorflow_text": "tensorflow-text",
    "tf_adapters": "tf-adapters",
}


def records_sha256(records):
    """SHA-256 of the records a run loaded (before splitting), as canonical
    JSON: the same data gives the same hash whatever file it came from."""
    digest = hashlib.sha256()
    for record in records:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False)
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def versions():
    """`{import name: version}` of Python and the packages in `PACKAGES`
    (`None` where one is not installed)."""
    found = {"python": platform.python_version()}
    for name, dist in PACKAGES.items():
        try:
            found[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return dict(sorted(found.items()))


def machine():
    """The machine: OS, processor model, cores visible and memory."""
    return {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": _memory_gib(),
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib():
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages / 2**30, 1)


def reproduce(config, data_sha256=None, command=None):
    """The `"reproduce"` block: every option of `config` (a dataclass),
    the data's hash, versions, machine and the command that runs it."""
    return {
        "command": command,
        "options": dataclasses.asdict(config),
        "data_sha256": data_sha256,
        "versions": versions(),
        "machine": machine(),
    }
