import keras

from tf_adapters.compat.trainer import TrainerCompatModel


class BackboneModel(TrainerCompatModel):
    """A `keras.Model` around a keras-hub backbone: saves the backbone in
    its config and rebuilds it on load (the shared part of the task models
    that `fit` trains).

    `fit` and `evaluate` make the optimizer's and the metrics' variables
    before the first step is traced, so that step is traced once, not twice
    (`compat.trainer.SingleTraceBuildMixin`), and work under
    `MultiWorkerMirroredStrategy` (`compat.trainer.MultiWorkerFitMixin`).
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.layers.serialize(self.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
