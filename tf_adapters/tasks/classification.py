"""Classification: a prompt around each text, scored two ways.

- `head="label_words"`: the LM's next-token scores for each label's word
  (zero-shot before training);
- `head="linear"`: a new linear head on the last non-padding token (a
  linear probe when only the head trains).
"""

import time

import numpy as np

from tf_adapters.compat.trainer import trace_predict_once
from tf_adapters.data.classification import load_classification_records
from tf_adapters.data.encoding import Encoded
from tf_adapters.data.encoding import encode_templated
from tf_adapters.evaluation.calibration import fit_label_bias
from tf_adapters.evaluation.classification import classification_metrics
from tf_adapters.tasks.base import Task
from tf_adapters.tasks.base import eval_length
from tf_adapters.tasks.base import evaluation_batches
from tf_adapters.tasks.label_word_classifier import LabelWordClassifier
from tf_adapters.tasks.label_word_classifier import label_token_ids
from tf_adapters.tasks.last_token_classifier import LastTokenClassifier
from tf_adapters.training.progress import keras_progress

# Chosen over the earlier "...\nIs the sentiment of this movie review
# positive or negative? Answer with one word." on validation: zero-shot
# 0.683 against 0.578, after the main job's training 0.807 against 0.783
# (3 seeds), and 9 tokens shorter, so 64 tokens fit 95 % of the reviews
# (docs/main_job.md).
SENTIMENT_TEMPLATE = (
    "<|im_start|>user\nReview: {text}\nSentiment (positive or negative):"
    "<|im_end|>\n<|im_start|>assistant\n"
)


class ClassificationTask(Task):
    name = "classification"
    default_data = "sentiment"
    default_template = SENTIMENT_TEMPLATE
    default_sequence_length = 64
    # Scored on the whole review: the longest built-in prompt has 98
    # tokens, and sorted evaluation batches cut to their longest row pay
    # for the few long ones only. Training at 64 cuts 5 % of the reviews
    # for a cheaper step; scoring them cut cost half a point of accuracy
    # (docs/main_job.md).
    default_eval_sequence_length = 128
    # A short run can end leaning to one class (the main job's seed 5:
    # 76 of 172 negative test reviews called positive, 0.785); a bias per
    # label fitted on 256 training reviews it did not train on gave it
    # 0.865, and over 6 seeds 0.868 +- 0.005 against 0.852 +- 0.034
    # (validation 0.812 against 0.800; docs/main_job.md).
    default_calibration_size = 256
    metrics = ("accuracy", "precision", "recall", "f1")

    def load(self, config):
        records, self.labels = load_classification_records(
            config.data, config.text_field, config.label_field, config.labels
        )
        return records

    def prepare(self, model, splits, config):
        tokenizer = model.preprocessor.tokenizer

        def encode(split, length):
            texts = [r["text"] for r in splits[split]]
            y = np.asarray([r["label_index"] for r in splits[split]], "int32")
            enc = encode_templated(texts, tokenizer, config.template, length)
            return Encoded(enc.x, y, truncated=enc.truncated)

        length = eval_length(model, config)
        self.train = encode("train", config.sequence_length)
        self.test = encode("test", length)
        self.validation = (
            encode("validation", length) if splits.get("validation") else None
        )
        return {"train": self.train.truncated, "test": self.test.truncated}

    def build_model(self, model, config):
        if config.head == "linear":
            return LastTokenClassifier(model.backbone, len(self.labels))
        ids = label_token_ids(model.preprocessor.tokenizer, self.labels)
        return LabelWordClassifier(model.backbone, ids)

    def compile_metrics(self):
        return ["accuracy"]

    def evaluate(self, trainer, model, config, split="test"):
        start = time.perf_counter()
        encoded = self.evaluation_split(split)
        logits = _logits(trainer, encoded, config, f"evaluating ({split})")
        predicted = np.argmax(logits, -1)
        metrics = classification_metrics(encoded.y, predicted, len(self.labels))
        metrics["seconds"] = round(time.perf_counter() - start, 1)
        return metrics

    def calibrate(self, trainer, model, records, config):
        """One bias per label (`fit_label_bias`) on `records`, training
        reviews no batch held, scored whole as the test reviews are; set
        in the label-word classifier's `label_bias`, or added to a linear
        head's bias (saved with the head)."""
        if not config.calibration_size:
            return None
        start = time.perf_counter()
        found = {"examples": len(records), "label_bias": None}
        y = np.asarray([r["label_index"] for r in records], "int32")
        missing = sorted(set(range(len(self.labels))) - set(y.tolist()))
        if missing:
            found["skipped"] = (
                f"the {len(records)} training examples not trained on hold "
                f"no {', '.join(repr(self.labels[i]) for i in missing)}"
            )
            return found
        enc = encode_templated(
            [r["text"] for r in records],
            model.preprocessor.tokenizer,
            config.template,
            eval_length(model, config),
        )
        logits = _logits(trainer, Encoded(enc.x, y), config, "calibrating")
        bias = fit_label_bias(logits, y)
        if config.head == "linear":
            shifted = np.asarray(trainer.head.bias) + bias
            trainer.head.bias.assign(shifted.astype("float32"))
        else:
            trainer.label_bias.assign(bias.astype("float32"))
        found["label_bias"] = [round(float(b), 6) for b in bias]
        found["seconds"] = round(time.perf_counter() - start, 1)
        return found

    def export_model(self, trainer, model):
        return trainer


def _logits(trainer, encoded, config, title):
    """`trainer`'s logits for each row of `encoded`, in its order."""
    # Batches from `Encoded.dataset` (not Keras's own from the arrays): its
    # iterator is deleted without a wait. Sorted by length, each cut to its
    # longest review, where batches may vary in shape.
    data, order = evaluation_batches(encoded, config)
    trace_predict_once(trainer, data)
    batches = -(-len(encoded.y) // config.batch_size)
    verbose, progress = keras_progress(title, batches)
    logits = trainer.predict(data, verbose=verbose, callbacks=progress)
    restored = np.empty_like(logits)
    restored[order] = logits
    return restored
