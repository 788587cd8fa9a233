"""Question answering, instructions and translation: prompt → response.

The loss covers the response tokens (and the end token) only; evaluation
generates a greedy answer for each test prompt and scores it against the
reference.
"""

import math
import time

from tf_adapters.data.encoding import encode_prompt_response
from tf_adapters.data.encoding import tokenize
from tf_adapters.data.records import load_records
from tf_adapters.evaluation import text as text_metrics
from tf_adapters.evaluation.generation import generate_continuations
from tf_adapters.evaluation.text import perplexity
from tf_adapters.tasks.base import Task
from tf_adapters.tasks.base import eval_length
from tf_adapters.tasks.base import evaluation_batches
from tf_adapters.tasks.language_model import LanguageModel
from tf_adapters.training.progress import Progress

CHAT_TEMPLATE = "<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


class PromptResponseTask(Task):
    name = "prompt_response"
    default_data = "qa"
    default_template = CHAT_TEMPLATE
    metrics = ("token_f1", "exact_match", "rouge_l", "response_perplexity")

    def fields(self, config):
        return [config.prompt_field, config.response_field]

    def format_prompt(self, text, config):
        return config.template.format(text=text)

    def load(self, config):
        return load_records(config.data, self.fields(config))

    def prepare(self, model, splits, config):
        self.tokenizer = model.preprocessor.tokenizer
        prompt_field, response_field = self.fields(config)

        def pairs(split):
            return [
                (self.format_prompt(r[prompt_field], config), r[response_field])
                for r in splits[split]
            ]

        length = eval_length(model, config)

        def encode(split, length=length):
            return encode_prompt_response(pairs(split), self.tokenizer, length)

        def answers(split):
            # Prompts longer than the sequence length keep their last
            # tokens (the question is at the end of the template's user
            # turn).
            prompts = [p for p, _ in pairs(split)]
            return {
                "references": [r[response_field] for r in splits[split]],
                "prompt_ids": [
                    ids[-length:] for ids in tokenize(self.tokenizer, prompts)
                ],
            }

        self.train = encode("train", config.sequence_length)
        self.test = encode("test")
        self.answers = {"test": answers("test")}
        self.validation = None
        if splits.get("validation"):
            self.validation = encode("validation")
            self.answers["validation"] = answers("validation")
        return {"train": self.train.truncated, "test": self.test.truncated}

    def build_model(self, model, config):
        return LanguageModel(model.backbone)

    def score(self, predictions, references):
        return {
            "token_f1": text_metrics.token_f1(predictions, references),
            "exact_match": text_metrics.exact_match(predictions, references),
            "rouge_l": text_metrics.rouge_l(predictions, references),
        }

    def evaluate(self, trainer, model, config, split="test"):
        start = time.perf_counter()
        encoded = self.evaluation_split(split)
        references = self.answers[split]["references"]
        prompt_ids = self.answers[split]["prompt_ids"]
        batches = -(-len(prompt_ids) // config.batch_size)
        predictions = generate_continuations(
            model,
            prompt_ids,
            config.max_new_tokens,
            config.batch_size,
            progress=Progress(f"generating ({split})", batches, unit="batch"),
        )
        metrics = self.score(predictions, references)
        data, _ = evaluation_batches(encoded, config)
        value = perplexity(trainer, data)
        metrics["response_perplexity"] = value
        metrics["response_loss"] = math.log(value)
        metrics["examples"] = [
            {"reference": r, "prediction": p}
            for r, p in list(zip(references, predictions, strict=False))[:5]
        ]
        metrics["seconds"] = round(time.perf_counter() - start, 1)
        return metrics


TRANSLATION_TEMPLATE = (
    "<|im_start|>user\nTranslate from {source_language} to "
    "{target_language}: {text}<|im_end|>\n<|im_start|>assistant\n"
)


class TranslationTask(PromptResponseTask):
    """Source → target text as a prompt; scored with BLEU and ROUGE-L."""

    name = "translation"
    default_data = None
    default_template = TRANSLATION_TEMPLATE
    metrics = ("bleu", "rouge_l", "response_perplexity")

    def fields(self, config):
        return [config.source_field, config.target_field]

    def format_prompt(self, text, config):
        return config.template.format(
            text=text,
            source_language=config.source_language,
            target_language=config.target_language,
        )

    def score(self, predictions, references):
        return {
            "bleu": text_metrics.bleu(predictions, references),
            "rouge_l": text_metrics.rouge_l(predictions, references),
        }
