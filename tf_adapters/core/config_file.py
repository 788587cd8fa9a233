"""Reading a YAML or JSON options file into a mapping of option → value.

The file must be UTF-8 text of at most `MAX_BYTES` holding one mapping
whose keys are strings, each given once (YAML and JSON both let a
repeated key silently override the first; here it is refused). Anything
else is a `CorruptFileError` naming the file and the problem; the values
are checked by whoever uses them (`FinetuneConfig.from_dict`).

Example:
>>> import os, tempfile
>>> from tf_adapters.core.config_file import read_config_file
>>> path = os.path.join(tempfile.mkdtemp(), "run.yaml")
>>> with open(path, "w") as f:
...     _ = f.write("method: lora\\nrank: 4\\n")
>>> read_config_file(path)
{'method': 'lora', 'rank': 4}
"""

import os

import yaml

from tf_adapters.core.integrity import corrupt
from tf_adapters.core.integrity import parse_json

MAX_BYTES = 1 << 20
WHAT = "options file"
ADVICE = "Fix the file: one `option: value` mapping, each option once"
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_Base):
    """YAML's safe loader, refusing a key that appears twice in a mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` may override keys, by design
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: the base constructor refuses it
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} appears twice",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def read_config_file(path):
    """The mapping in YAML (`.yaml` / `.yml`) or JSON file `path`.

    Raises:
        FileNotFoundError: `path` does not exist.
        CorruptFileError: the file is too large, not UTF-8, not valid YAML
            or JSON, not one mapping with string keys, or repeats a key.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file {path} not found.")
    if os.path.getsize(path) > MAX_BYTES:
        raise corrupt(
            path,
            WHAT,
            f"is {os.path.getsize(path)} bytes; an options file holds at "
            f"most {MAX_BYTES}",
            ADVICE,
        )
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
        if str(path).endswith((".yaml", ".yml")):
            data = yaml.load(text, Loader=_UniqueKeyLoader)
        else:
            data = parse_json(text)
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        problem = "is nested too deeply" if isinstance(e, RecursionError) else e
        raise corrupt(
            path, WHAT, f"cannot be parsed ({problem})", ADVICE
        ) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise corrupt(
            path, WHAT, "must hold a mapping of option: value", ADVICE
        )
    return data
