"""What every task provides to the fine-tuning loop."""

import keras
import numpy as np


class Task:
    """A task: its data, the model that trains on it, and its metrics.

    Subclasses set the class attributes and implement the methods; the
    fine-tuning loop (`run_finetune`) calls them in order: `load`,
    `prepare`, `build_model`, then `evaluate` before and after training.
    """

    name = ""
    #: Built-in dataset used when `--data` is not given (None: required).
    default_data = None
    #: Prompt template used when `--template` is not given.
    default_template = "{text}"
    #: Tokens per example when `--sequence-length` is not given.
    default_sequence_length = 80
    #: Tokens per validation / test example when `--eval-sequence-length`
    #: is not given, if more than `sequence_length` (None: the same).
    default_eval_sequence_length = None
    #: Training examples not trained on that `calibrate` fits the label
    #: bias on when `--calibration-size` is not given (0: no calibration;
    #: only tasks with classes calibrate).
    default_calibration_size = 0
    #: Metric names in report order; the first is the headline.
    metrics = ()
    #: Whether a larger headline metric is better.
    higher_is_better = True
    #: The encoded validation split; `prepare` sets it when the split is
    #: not empty.
    validation = None

    def load(self, config):
        """Returns the records of `config.data`."""
        raise NotImplementedError

    def split(self, records, config):
        """Train / validation / test splits of `load`'s records."""
        from tf_adapters.data.splits import split_records

        return split_records(
            records,
            config.test_size,
            config.validation_size,
            config.split_seed,
        )

    def prepare(self, model, splits, config):
        """Encodes the splits: sets `self.train`, `self.test` and, when the
        validation split is not empty, `self.validation` (else `None`)."""
        raise NotImplementedError

    def build_model(self, model, config):
        """The `keras.Model` that `fit` trains (it shares `model`'s
        backbone)."""
        raise NotImplementedError

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile_metrics(self):
        return None

    def evaluate(self, trainer, model, config, split="test"):
        """Metrics on the test split (or `split="validation"`), as a dict
        of floats (and lists)."""
        raise NotImplementedError

    def evaluation_split(self, split):
        """The encoded `split` (`"test"` or `"validation"`) to evaluate."""
        encoded = getattr(self, split, None) if split != "train" else None
        if encoded is None:
            raise ValueError(
                f"There is no {split!r} split to evaluate; give "
                "--validation-size N for a validation split."
            )
        return encoded

    def calibrate(self, trainer, model, records, config):
        """After training: fits what the task calibrates on `records`
        (training records no batch held) and sets it in `trainer`;
        returns what `report.json` records (`None`: nothing to do)."""
        return None

    def export_model(self, trainer, model):
        """What `export_saved_model` exports for this task."""
        return model


def eval_length(model, config):
    """Tokens per validation / test example: `config.eval_sequence_length`,
    at most the model's context where it has one (learned position tables,
    as GPT-2's, end at `max_sequence_length`)."""
    context = getattr(model.backbone, "max_sequence_length", None)
    if context:
        return min(config.eval_sequence_length, context)
    return config.eval_sequence_length


def evaluation_batches(encoded, config):
    """`(dataset, order)`: `encoded`'s batches to evaluate, sorted by
    length and each cut to its longest row when `config.dynamic_padding`
    (else in order at full length), and the order of their rows, so that
    per-row outputs go back in place by `restored[order] = outputs`
    (a metric that sums over rows, such as perplexity, needs no order)."""
    order = np.arange(len(encoded.x["token_ids"]))
    if config.dynamic_padding:
        encoded, order = encoded.sorted_by_length()
    data = encoded.dataset(
        config.batch_size, dynamic_padding=config.dynamic_padding
    )
    return data, order
