"""The application layer: the article's pipeline as stages, and the jobs
the `tf-adapters` command runs (finetune, evaluate, compare, generate,
export, convert, demo, sweep). The CLI depends on this package only."""

from tf_adapters.core.atomic import SaveError
from tf_adapters.core.validation import base_type
from tf_adapters.pipeline.compare import COMPARE_METHODS
from tf_adapters.pipeline.compare import DEFAULT_METHODS
from tf_adapters.pipeline.compare import FULL_LEARNING_RATE
from tf_adapters.pipeline.compare import run_compare
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.pipeline.convert import run_convert
from tf_adapters.pipeline.demo import run_demo
from tf_adapters.pipeline.evaluate import run_evaluate
from tf_adapters.pipeline.export import run_export
from tf_adapters.pipeline.finetune import run_finetune
from tf_adapters.pipeline.generate import run_generate
from tf_adapters.pipeline.sweep import GRID
from tf_adapters.pipeline.sweep import SWEEP_METHODS
from tf_adapters.pipeline.sweep import run_sweep
from tf_adapters.training.preemption import TrainingInterrupted

__all__ = [
    "COMPARE_METHODS",
    "DEFAULT_METHODS",
    "FULL_LEARNING_RATE",
    "FinetuneConfig",
    "GRID",
    "SWEEP_METHODS",
    "SaveError",
    "TrainingInterrupted",
    "base_type",
    "run_compare",
    "run_convert",
    "run_demo",
    "run_evaluate",
    "run_export",
    "run_finetune",
    "run_generate",
    "run_sweep",
]
