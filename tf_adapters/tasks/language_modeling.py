"""Text generation / domain adaptation: next-token training, perplexity."""

import math
import time

from tf_adapters.data.encoding import pack_texts
from tf_adapters.data.records import load_records
from tf_adapters.data.streaming import StreamedData
from tf_adapters.data.streaming import stream_lines
from tf_adapters.evaluation.text import perplexity
from tf_adapters.tasks.base import Task
from tf_adapters.tasks.base import eval_length
from tf_adapters.tasks.base import evaluation_batches
from tf_adapters.tasks.language_model import LanguageModel


class CausalLMTask(Task):
    name = "causal_lm"
    default_data = "plots"
    metrics = ("perplexity", "loss")
    higher_is_better = False

    def load(self, config):
        if config.stream:
            return self._first_lines(config)
        return load_records(config.data, [config.text_field])

    def _first_lines(self, config):
        if not config.data.endswith(".txt"):
            raise ValueError(
                "--stream reads a .txt file (one document per line). "
                f"Received: --data {config.data}."
            )
        lines = stream_lines(config.data).take(config.test_size)
        records = [
            {config.text_field: line.decode("utf-8")}
            for line in lines.as_numpy_iterator()
        ]
        if not records:
            raise ValueError(f"{config.data}: no text after cleaning.")
        return records

    def split(self, records, config):
        if not config.stream:
            return super().split(records, config)
        # Streamed: the first `test_size` lines are the test split, every
        # line after them trains.
        return {"train": [], "validation": [], "test": records}

    def prepare(self, model, splits, config):
        tokenizer = model.preprocessor.tokenizer
        if config.stream:
            texts = [r[config.text_field] for r in splits["test"]]
            self.test = pack_texts(texts, tokenizer, eval_length(model, config))
            self.validation = None
            self.train = StreamedData(
                config.data,
                tokenizer,
                config.sequence_length,
                skip_lines=len(texts),
            )
            return {"train": 0, "test": 0}

        length = eval_length(model, config)

        def encode(split, length=length):
            texts = [
                config.template.format(text=r[config.text_field])
                for r in splits[split]
            ]
            return pack_texts(texts, tokenizer, length)

        # Texts are packed into full chunks: nothing is cut away.
        self.train = encode("train", config.sequence_length)
        self.test = encode("test")
        self.validation = (
            encode("validation") if splits.get("validation") else None
        )
        return {"train": 0, "test": 0}

    def build_model(self, model, config):
        return LanguageModel(model.backbone)

    def evaluate(self, trainer, model, config, split="test"):
        start = time.perf_counter()
        encoded = self.evaluation_split(split)
        data, _ = evaluation_batches(encoded, config)
        value = perplexity(trainer, data)
        return {
            "perplexity": value,
            "loss": math.log(value),
            "tokens": int(encoded.sample_weight.sum()),
            "seconds": round(time.perf_counter() - start, 1),
        }
