"""The frozen base's zero-shot accuracy on the validation split under
several prompt wordings (docs/main_job.md, "The prompt's wording").

    python docs/screen_templates.py OUT.json

Loads the embedded model once; per wording, encodes the splits (split
seed 0, 400 validation reviews, 80 tokens) and evaluates the label-word
classifier on the validation split.
"""

import json
import sys

from tf_adapters.data.encoding import tokenize
from tf_adapters.pipeline import stages
from tf_adapters.pipeline.config import FinetuneConfig

U, A, E = "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>\n"
QUESTION = (
    "Is the sentiment of this movie review positive or negative? "
    "Answer with one word."
)
TEMPLATES = {
    # The main job's first default prompt.
    "default": f"{U}Review: {{text}}\n{QUESTION}{E}{A}",
    "question_first": f"{U}{QUESTION}\nReview: {{text}}{E}{A}",
    "short": f"{U}{{text}}\nPositive or negative?{E}{A}",
    "system": (
        "<|im_start|>system\nYou label movie reviews as positive or "
        f"negative.{E}{U}{{text}}{E}{A}"
    ),
    "critic": (
        f'{U}A film critic wrote: "{{text}}"\nDid the critic like the '
        f"movie? Answer positive or negative.{E}{A}"
    ),
    "sentiment_colon": (
        f"{U}Review: {{text}}\nSentiment (positive or negative):{E}{A}"
    ),
}


def main(out):
    run, found = None, {}
    for name, template in TEMPLATES.items():
        config = FinetuneConfig.from_dict(
            {
                "validation_size": 400,
                "template": template,
                "sequence_length": 80,
                "export": False,
            }
        )
        if run is None:
            run = stages.Run(config, None)
            stages.load(run)
        run.config = config
        stages.prepare(run)
        stages.build_trainer(run)
        run.trainer.compile(loss=run.task.loss(), jit_compile=True)
        metrics = run.task.evaluate(
            run.trainer, run.model, config, split="validation"
        )
        tokenizer = run.model.preprocessor.tokenizer
        parts = [p for p in template.split("{text}") if p]
        found[name] = {
            "template": template,
            "template_tokens": sum(
                len(ids) for ids in tokenize(tokenizer, parts)
            ),
            "validation_accuracy": metrics["accuracy"],
            "validation_f1": metrics["f1"],
        }
        print(name, found[name], flush=True)
    with open(out, "w") as f:
        json.dump(found, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
