"""What every task provides to the fine-tuning loop."""

import keras


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
    #: Metric names in report order; the first is the headline.
    metrics = ()
    #: Whether a larger headline metric is better.
    higher_is_better = True

    def load(self, config):
        """Returns the records of `config.data`."""
        raise NotImplementedError

    def split(self, records, config):
        """Train / validation / test splits of `load`'s records."""
        from tf_adapters.data.splits import split_records

        return split_records(
            records, config.test_size, config.validation_size, config.seed
        )

    def prepare(self, model, splits, config):
        """Encodes the train and test splits (sets `self.train`...)."""
        raise NotImplementedError

    def build_model(self, model, config):
        """The `keras.Model` that `fit` trains (it shares `model`'s
        backbone)."""
        raise NotImplementedError

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile_metrics(self):
        return None

    def evaluate(self, trainer, model, config):
        """Metrics on the test split, as a dict of floats (and lists)."""
        raise NotImplementedError

    def export_model(self, trainer, model):
        """What `export_saved_model` exports for this task."""
        return model
