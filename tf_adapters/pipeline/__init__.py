"""The application layer: the article's pipeline as stages, and the jobs
the `tf-adapters` command runs (finetune, evaluate, compare, generate,
export, convert, demo, sweep). The CLI depends on this package only."""

from tf_adapters.core.lazy import lazy_attributes

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

# Each name is imported on first use: the CLI's parser reads the configs and
# method lists, which load no TensorFlow, and the jobs (which do) only once
# the arguments are parsed.
__getattr__ = lazy_attributes(
    __name__,
    {
        "SaveError": "tf_adapters.core.atomic",
        "base_type": "tf_adapters.core.validation",
        "COMPARE_METHODS": "tf_adapters.pipeline.compare",
        "DEFAULT_METHODS": "tf_adapters.pipeline.compare",
        "FULL_LEARNING_RATE": "tf_adapters.pipeline.compare",
        "run_compare": "tf_adapters.pipeline.compare",
        "FinetuneConfig": "tf_adapters.pipeline.config",
        "run_convert": "tf_adapters.pipeline.convert",
        "run_demo": "tf_adapters.pipeline.demo",
        "run_evaluate": "tf_adapters.pipeline.evaluate",
        "run_export": "tf_adapters.pipeline.export",
        "run_finetune": "tf_adapters.pipeline.finetune",
        "run_generate": "tf_adapters.pipeline.generate",
        "GRID": "tf_adapters.pipeline.sweep",
        "SWEEP_METHODS": "tf_adapters.pipeline.sweep",
        "run_sweep": "tf_adapters.pipeline.sweep",
        "TrainingInterrupted": "tf_adapters.training.preemption",
    },
)
