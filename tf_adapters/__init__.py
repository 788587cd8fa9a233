"""tf_adapters: adapter fine-tuning for keras-hub language models.

The public API, in the order of the article's pipeline:

- Base model: `load_base` (the embedded SmolLM2-135M, a keras-hub preset,
  a Hugging Face folder or a GGUF file).
- Data: `load_data` (the built-in datasets, files or TFDS, cleaned),
  `split_data` (seeded train / validation / test), `encode_prompts` (a
  prompt template around each text, tokenized for `fit`).
- Adapter configs: `LoraConfig`, `BottleneckConfig` (Houlsby, Pfeiffer,
  parallel), `IA3Config`, `PromptTuningConfig`, `PrefixTuningConfig`
  (`fold_prefix` folds its reparameterization network after training).
- Adapters on a model: `add_adapter`, `set_active_adapter`,
  `active_adapter`, `list_adapters`, `disable_adapters`,
  `enable_adapters`, `delete_adapter`, `trainable_summary`.
- Layer interaction (several adapters at once): `Stack`, `Parallel`
  (`set_active_adapter(model, tfa.Stack("lang", "task"))`), and
  AdapterFusion: `add_fusion`, `FusionConfig`, `fusion_weights`.
- Dynamic adjustment: `AdaLoraConfig` (AdaLoRA: LoRA in SVD form whose
  rank budget moves to the layers that matter), `AdaLoraCallback`, the
  Keras callback that allocates it during `fit`, and `adalora_ranks`.
- Task models that `compile` / `fit` / `evaluate` train:
  `LabelWordClassifier` (`LabelWordClassifier.from_causal_lm(lm,
  labels)`), `LastTokenClassifier`, `LanguageModel`; and
  `loraplus_optimizer` (LoRA+: LoRA's `B` at a higher learning rate).
- Merging: `merge_adapter`, `unmerge_adapter`, `merge_and_unload`;
  `add_weighted_adapter` combines LoRA adapters into a new one (PEFT's
  linear, cat, SVD, TIES and DARE combinations).
- Saving and serving: `save_adapter`, `load_adapter`, `save_model`,
  `export_saved_model` (a versioned SavedModel for TF Serving). Every file
  we read (adapter checkpoints, training states, PEFT, Hugging Face and
  GGUF checkpoints, configs, data files) raises `CorruptFileError` (a
  `ValueError` naming the file and what to do) for damaged content.
- Other ecosystems: `load_adapter` also reads PEFT adapter folders and
  keras-hub `.lora.h5` files, `save_adapter(..., format="peft")` writes
  PEFT folders, and `export_hf` writes a Hugging Face checkpoint of the
  model with its adapter merged.
- The whole job: `FinetuneConfig`, `run_finetune` (what `tf-adapters
  finetune` runs). `TrainingInterrupted`: SIGTERM or SIGINT stopped it
  after a whole step, with the training state saved (`resume=True`
  continues); `SaveError`: a save failed on a full disk, and what was
  saved before is intact.

Example:
>>> import tf_adapters as tfa
>>> cfg = tfa.LoraConfig(rank=8, alpha=16, target_layers=["query", "value"])
>>> cfg.scale
2.0
"""

import importlib
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

__all__ = [
    "AdaLoraCallback",
    "AdaLoraConfig",
    "BottleneckConfig",
    "CorruptFileError",
    "FinetuneConfig",
    "FusionConfig",
    "IA3Config",
    "LabelWordClassifier",
    "LanguageModel",
    "LastTokenClassifier",
    "LoraConfig",
    "Parallel",
    "PrefixTuningConfig",
    "PromptTuningConfig",
    "SaveError",
    "Stack",
    "TrainingInterrupted",
    "active_adapter",
    "adalora_ranks",
    "add_adapter",
    "add_fusion",
    "add_weighted_adapter",
    "delete_adapter",
    "disable_adapters",
    "enable_adapters",
    "encode_prompts",
    "export_hf",
    "export_saved_model",
    "fold_prefix",
    "fusion_weights",
    "list_adapters",
    "load_adapter",
    "load_base",
    "load_data",
    "loraplus_optimizer",
    "merge_adapter",
    "merge_and_unload",
    "run_finetune",
    "save_adapter",
    "save_model",
    "set_active_adapter",
    "split_data",
    "trainable_summary",
    "unmerge_adapter",
]

# `tf-adapters` (`tf_adapters_cli`) sets this while it imports its argument
# parser, so that `--help` and bad flags answer without loading TensorFlow;
# once the arguments are parsed, `tf_adapters.cli` runs the imports below
# (the first public name used would too).
_DEFER_IMPORTS = "TF_ADAPTERS_DEFER_IMPORTS"
DEFERRED = os.environ.get(_DEFER_IMPORTS) == "1"

if DEFERRED:

    def __getattr__(name):
        if name not in __all__:
            raise AttributeError(
                f"module {__name__!r} has no attribute {name!r}"
            )
        os.environ.pop(_DEFER_IMPORTS, None)
        importlib.reload(sys.modules[__name__])
        return globals()[name]

else:
    from tf_adapters.checkpoint import load_adapter
    from tf_adapters.checkpoint import save_adapter
    from tf_adapters.core.atomic import SaveError
    from tf_adapters.core.composition import Parallel
    from tf_adapters.core.composition import Stack
    from tf_adapters.core.integrity import CorruptFileError
    from tf_adapters.data.api import encode_prompts
    from tf_adapters.data.api import load_data
    from tf_adapters.data.api import split_data
    from tf_adapters.export.saved_model import export_saved_model
    from tf_adapters.injection.adapted_model import register_keras_hub_classes
    from tf_adapters.injection.api import active_adapter
    from tf_adapters.injection.api import add_adapter
    from tf_adapters.injection.api import delete_adapter
    from tf_adapters.injection.api import disable_adapters
    from tf_adapters.injection.api import enable_adapters
    from tf_adapters.injection.api import list_adapters
    from tf_adapters.injection.api import set_active_adapter
    from tf_adapters.injection.fold import fold_prefix
    from tf_adapters.injection.fusion import add_fusion
    from tf_adapters.injection.fusion import fusion_weights
    from tf_adapters.injection.unload import merge_adapter
    from tf_adapters.injection.unload import merge_and_unload
    from tf_adapters.injection.unload import unmerge_adapter
    from tf_adapters.injection.weighted import add_weighted_adapter
    from tf_adapters.interop.hf_export import export_hf
    from tf_adapters.methods.adalora import AdaLoraCallback
    from tf_adapters.methods.adalora import AdaLoraConfig
    from tf_adapters.methods.adalora.truncate import adalora_ranks
    from tf_adapters.methods.bottleneck import BottleneckConfig
    from tf_adapters.methods.fusion import FusionConfig
    from tf_adapters.methods.ia3 import IA3Config
    from tf_adapters.methods.lora import LoraConfig
    from tf_adapters.methods.prefix_tuning import PrefixTuningConfig
    from tf_adapters.methods.prompt_tuning import PromptTuningConfig
    from tf_adapters.methods.registry import import_planners
    from tf_adapters.models.loading import load_base
    from tf_adapters.pipeline import FinetuneConfig
    from tf_adapters.pipeline import run_finetune
    from tf_adapters.saving import save_model
    from tf_adapters.summary import trainable_summary
    from tf_adapters.tasks.label_word_classifier import LabelWordClassifier
    from tf_adapters.tasks.language_model import LanguageModel
    from tf_adapters.tasks.last_token_classifier import LastTokenClassifier
    from tf_adapters.training.loraplus import loraplus_optimizer
    from tf_adapters.training.loraplus import register_keras_optimizers
    from tf_adapters.training.preemption import TrainingInterrupted

    # Keras finds our classes in a fresh process (`keras.saving.load_model`)
    # only if they are registered: importing the package does it.
    import_planners()
    register_keras_hub_classes()
    register_keras_optimizers()
