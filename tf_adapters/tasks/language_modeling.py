"""Text generation / domain adaptation: next-token training, perplexity."""

import math
import time

from tf_adapters.data.encoding import pack_texts
from tf_adapters.data.records import load_records
from tf_adapters.evaluation.text import perplexity
from tf_adapters.tasks.base import Task
from tf_adapters.training.language_model import LanguageModel


class CausalLMTask(Task):
    name = "causal_lm"
    default_data = "plots"
    metrics = ("perplexity", "loss")
    higher_is_better = False

    def load(self, config):
        return load_records(config.data, [config.text_field])

    def prepare(self, model, splits, config):
        tokenizer = model.preprocessor.tokenizer

        def encode(split):
            texts = [
                config.template.format(text=r[config.text_field])
                for r in splits[split]
            ]
            return pack_texts(texts, tokenizer, config.sequence_length)

        # Texts are packed into full chunks: nothing is cut away.
        self.train, self.test = encode("train"), encode("test")
        return {"train": 0, "test": 0}

    def build_model(self, model, config):
        return LanguageModel(model.backbone)

    def evaluate(self, trainer, model, config):
        start = time.perf_counter()
        value = perplexity(trainer, self.test.dataset(config.batch_size))
        return {
            "perplexity": value,
            "loss": math.log(value),
            "tokens": int(self.test.sample_weight.sum()),
            "seconds": round(time.perf_counter() - start, 1),
        }
