"""Each `tf_adapters.compat` function on the installed Keras / keras-hub.

When an upgrade changes a private attribute these rely on, the failing test
names the function to fix (see the version matrix in `.ci/matrix.sh`).
"""

import keras
import numpy as np
import tensorflow as tf

from tests import tiny_models
from tf_adapters.compat import class_swap
from tf_adapters.compat import layers
from tf_adapters.compat import optimizers
from tf_adapters.compat import tracking
from tf_adapters.compat import trainer
from tf_adapters.compat.export import new_export_archive


class Pair(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(3, name="first")
        self.second = keras.layers.Dense(2, name="second")

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), name="scale")
        self.count = self.add_weight(shape=(), name="count", trainable=False)
        self.first.build(input_shape)
        self.second.build((None, 3))

    def call(self, x):
        return self.scale * self.second(self.first(x))


def _pair():
    pair = Pair()
    pair.build((None, 4))
    return pair


def test_direct_sublayers_and_own_variables():
    pair = _pair()
    assert [x.name for x in layers.direct_sublayers(pair)] == [
        "first",
        "second",
    ]
    assert [v.name for v in layers.own_variables(pair)] == ["scale", "count"]
    assert layers.own_variables(pair, trainable_only=True) == [pair.scale]
    outer = keras.Sequential([keras.Input((4,)), pair])
    assert [x.name for x in layers.walk_layers(outer)][-2:] == [
        "first",
        "second",
    ]


def test_untracked_attributes_are_not_tracked():
    pair = _pair()
    other = keras.layers.Dense(5)
    other.build((None, 2))
    layers.set_untracked(pair, "partner", other)
    assert layers.get_untracked(pair, "partner") is other
    assert other not in layers.direct_sublayers(pair)
    assert len(pair.weights) == 6  # not the partner's two
    layers.del_untracked(pair, "partner")
    assert layers.get_untracked(pair, "partner") is None


def test_replace_set_and_remove_sublayer_on_a_built_layer():
    pair = _pair()
    order = [v.name for v in pair.weights]
    new = keras.layers.Dense(3, name="first")
    new.build((None, 4))
    tracking.replace_sublayer(pair, "first", pair.first, new)
    assert pair.first is new
    assert layers.direct_sublayers(pair)[0] is new  # same position
    assert [v.name for v in pair.weights] == order
    extra = keras.layers.Dense(1, name="extra")
    extra.build((None, 2))
    tracking.set_sublayer(pair, "extra", extra)
    assert layers.direct_sublayers(pair)[-1] is extra
    tracking.remove_sublayer(pair, "extra")
    assert not hasattr(pair, "extra")
    assert extra not in layers.direct_sublayers(pair)


class Loud:
    class_prefix = "Loud"

    def call(self, x):
        return 2 * super().call(x)


def test_class_swap_in_and_out():
    pair = _pair()
    x = np.ones((1, 4), "float32")
    before = np.asarray(pair(x))
    class_swap.swap_in(pair, Loud)
    assert type(pair).__name__ == "LoudPair"
    assert class_swap.base_class_of(pair) is Pair
    np.testing.assert_allclose(pair(x), 2 * before, rtol=1e-6)
    class_swap.swap_out(pair, Loud)
    assert type(pair) is Pair
    assert class_swap.mixed_class(Loud, Pair) is class_swap.mixed_class(
        Loud, Pair
    )


class Plus:
    class_prefix = "Plus"

    def call(self, x):
        return 1 + super().call(x)


def test_swap_out_keeps_the_other_mixins():
    pair = _pair()
    x = np.ones((1, 4), "float32")
    before = np.asarray(pair(x))
    class_swap.swap_in(pair, Loud)
    class_swap.swap_in(pair, Plus)  # Plus(Loud(Pair)): 1 + 2·f
    np.testing.assert_allclose(pair(x), 1 + 2 * before, rtol=1e-6)
    class_swap.swap_out(pair, Loud)  # the inner one out: Plus(Pair)
    assert type(pair) is class_swap.mixed_class(Plus, Pair)
    np.testing.assert_allclose(pair(x), 1 + before, rtol=1e-6)
    class_swap.swap_out(pair, Plus)
    assert type(pair) is Pair


def test_reset_compiled_functions():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.predict(np.ones((2, 4), "float32"), verbose=0)
    assert model.predict_function is not None
    trainer.reset_compiled_functions(model)
    assert model.predict_function is None


def test_is_multi_worker_is_false_on_one_machine():
    assert not trainer.is_multi_worker(tf.distribute.get_strategy())
    assert not trainer.is_multi_worker(
        tf.distribute.MirroredStrategy(["/cpu:0"])
    )


class TinyModel(trainer.TrainerCompatModel):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)


def test_trainer_compat_model_builds_before_the_first_trace(count_traces):
    model = TinyModel()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    traces = count_traces("train_step")
    data = tf.data.Dataset.from_tensor_slices(
        (np.ones((8, 3), "float32"), np.ones((8, 1), "float32"))
    ).batch(4)
    model.fit(data, epochs=1, verbose=0)
    assert len(traces) == 1


class CallLog(TinyModel):
    """Logs each call: eager, or traced into a graph."""

    calls = []

    def call(self, x):
        self.calls.append("eager" if tf.executing_eagerly() else "graph")
        return super().call(x)


def test_a_built_model_is_not_traced_to_build_its_loss_and_metrics():
    model = CallLog()
    model(np.ones((1, 3), "float32"))  # built
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    CallLog.calls.clear()
    data = tf.data.Dataset.from_tensor_slices(
        (np.ones((8, 3), "float32"), np.ones((8, 1), "float32"))
    ).batch(4)
    model.fit(data, epochs=1, verbose=0)
    # One eager row builds the loss, metrics and optimizer; Keras alone
    # would trace the whole model for them first (compute_output_spec).
    assert CallLog.calls == ["eager", "graph"]
    assert model.optimizer.built and model.metrics[-1].built


def test_export_archive_stores_each_variable_once(tmp_path):
    backbone = tiny_models.gpt2()
    archive = new_export_archive()
    archive.track(backbone)

    def call(token_ids, padding_mask):
        return backbone({"token_ids": token_ids, "padding_mask": padding_mask})

    spec = tf.TensorSpec((None, None), tf.int32)
    archive.add_endpoint("call", call, input_signature=[spec, spec])
    archive.write_out(str(tmp_path / "export"), verbose=False)
    reader = tf.train.load_checkpoint(
        str(tmp_path / "export" / "variables" / "variables")
    )
    saved = [
        name
        for name in reader.get_variable_to_shape_map()
        if "OPTIMIZER_SLOT" not in name and name.endswith("VARIABLE_VALUE")
    ]
    assert len(saved) == len(backbone.variables)  # once each, not twice


def test_tensorflow_trainer_class_is_in_keras_models():
    cls = trainer.tensorflow_trainer_class()
    assert issubclass(keras.Model, cls)
    assert callable(cls.train_step)


def test_multi_worker_fix_stays_out_of_the_way_on_one_machine():
    model = TinyModel()
    assert not model._fix_multi_worker()
    model.compile(optimizer="adam", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.ones((4, 1), "float32")
    logs = model.train_step((x, y))
    assert all(np.ndim(v) == 0 for v in logs.values())  # scalars, as Keras


def test_variable_index_finds_the_tf_variable_update_step_gets():
    variables = [keras.Variable(np.zeros(n, "float32")) for n in (2, 3)]
    optimizer = keras.optimizers.SGD()
    optimizer.build(variables)
    for i, var in enumerate(variables):
        assert optimizers.variable_index(optimizer, var) == i
        # On TensorFlow `update_step` gets the `tf.Variable` underneath.
        assert optimizers.variable_index(optimizer, var.value) == i


def test_copy_weight_decay_exclusions():
    var = keras.Variable(np.ones(2, "float32"), name="bias")
    source = keras.optimizers.AdamW(weight_decay=0.5)
    source.exclude_from_weight_decay(var_names=["bias"])
    target = keras.optimizers.AdamW(weight_decay=0.5)
    optimizers.copy_weight_decay_exclusions(source, target)
    target.apply([np.zeros(2, "float32")], [var])
    np.testing.assert_array_equal(np.array(var), [1.0, 1.0])  # no decay
    plain = keras.optimizers.AdamW(weight_decay=0.5)
    optimizers.copy_weight_decay_exclusions(keras.optimizers.AdamW(), plain)
    plain.apply([np.zeros(2, "float32")], [var])
    assert float(np.array(var)[0]) < 1.0
