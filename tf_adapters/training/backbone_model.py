import keras
import tensorflow as tf

from tf_adapters.training.multi_worker import MultiWorkerFitMixin

# Data Keras can read again from the start after a batch is taken out.
_REWINDABLE = {"TFDatasetAdapter", "ArrayDataAdapter"}


class BackboneModel(MultiWorkerFitMixin, keras.Model):
    """A `keras.Model` around a keras-hub backbone: saves the backbone in
    its config and rebuilds it on load (the shared part of the task models
    that `fit` trains).

    `fit` and `evaluate` make the optimizer's and the metrics' variables
    before the first step is traced, so that step is traced once, not twice
    (tf.function traces again a step that made variables; tens of seconds
    for the embedded model).
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras builds everything from one batch's shapes under a strategy
        # only; with none it defers to the first trace. Do the same here.
        if self._distribute_strategy is not None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        if iterator is not None:
            adapter = type(getattr(iterator, "data_adapter", None)).__name__
            if adapter not in _REWINDABLE:
                return None  # a generator: no batch can be spared
            for _, _, batches in iterator:  # `fit` rewinds it afterwards
                try:
                    data_batch = next(batches)
                except (StopIteration, tf.errors.OutOfRangeError):
                    return None  # no data: Keras says so in its own words
                break
        if data_batch is not None:
            self._symbolic_build(data_batch=data_batch)
        return None

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.layers.serialize(self.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
