"""The tasks `tf-adapters finetune --task` trains on."""

from tf_adapters.tasks.classification import ClassificationTask
from tf_adapters.tasks.language_modeling import CausalLMTask
from tf_adapters.tasks.prompt_response import PromptResponseTask
from tf_adapters.tasks.prompt_response import TranslationTask

TASKS = {
    task.name: task
    for task in (
        ClassificationTask,
        CausalLMTask,
        PromptResponseTask,
        TranslationTask,
    )
}


def get_task(name):
    """A new task object by name (`classification`, `causal_lm`, ...)."""
    if name not in TASKS:
        raise ValueError(
            f"Unknown task {name!r}; choose one of {sorted(TASKS)}."
        )
    return TASKS[name]()
