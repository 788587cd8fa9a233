import contextlib

import keras
import pytest
from layer_test_case import run_adapter_layer_test

from tf_adapters.methods.bottleneck import BottleneckLayer
from tf_adapters.methods.bottleneck import ParallelBottleneckLayer
from tf_adapters.methods.ia3 import IA3Layer
from tf_adapters.methods.lora import LoraLayer


def dense(dtype, activation=None):
    return keras.layers.Dense(6, activation=activation, dtype=dtype)


def query(dtype):
    return keras.layers.EinsumDense(
        "abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de", dtype=dtype
    )


def attention_output(dtype):
    return keras.layers.EinsumDense(
        "abcd,cde->abe", output_shape=(None, 6), bias_axes="e", dtype=dtype
    )


def gemma_query(dtype):
    return keras.layers.EinsumDense(
        "btd,ndh->btnh", output_shape=(None, 2, 3), dtype=dtype
    )


LORA_BASES = {
    "dense": (dense, (4, 5)),
    "dense_gelu": (lambda d: dense(d, "gelu"), (4, 5)),
    "query": (query, (2, 3, 5)),
    "attention_output": (attention_output, (2, 3, 2, 4)),
    "gemma_query": (gemma_query, (2, 3, 5)),
}


@pytest.mark.parametrize("base", list(LORA_BASES))
def test_lora_layer(base, tmp_path):
    make_base, shape = LORA_BASES[base]
    run_adapter_layer_test(
        lambda dtype: LoraLayer(make_base(dtype), "t", rank=2, alpha=4.0),
        shape,
        tmp=tmp_path,
    )


@pytest.mark.parametrize("base", list(LORA_BASES))
@pytest.mark.parametrize("scale_input", [False, True])
def test_ia3_layer(base, scale_input, tmp_path):
    make_base, shape = LORA_BASES[base]
    run_adapter_layer_test(
        lambda dtype: IA3Layer(make_base(dtype), "t", scale_input=scale_input),
        shape,
        tmp=tmp_path,
    )


@pytest.mark.parametrize("base", ["dense", "attention_output"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_bottleneck_layer(base, layer_norm, tmp_path):
    make_base, shape = LORA_BASES[base]
    run_adapter_layer_test(
        lambda dtype: BottleneckLayer(
            make_base(dtype), "t", 3, activation="gelu", layer_norm=layer_norm
        ),
        shape,
        tmp=tmp_path,
    )


def test_parallel_bottleneck_layer(tmp_path):
    run_adapter_layer_test(
        lambda dtype: ParallelBottleneckLayer(
            keras.layers.Dense(5, dtype=dtype), "t", 3
        ),
        (4, 5),
        tmp=tmp_path,
    )


def test_parallel_bottleneck_reads_a_wider_tapped_input():
    import numpy as np

    from tf_adapters.core.forward_scope import forward_scope
    from tf_adapters.core.forward_scope import receive
    from tf_adapters.methods.bottleneck import InputTap

    first = keras.layers.Dense(7)
    layer = ParallelBottleneckLayer(keras.layers.Dense(5), "t", 3, input_dim=4)
    tap = InputTap(first, "t", target=layer)
    x = np.ones((2, 4), "float32")
    hidden = np.ones((2, 7), "float32")
    with forward_scope():  # what the decoder layer's call opens
        tap(x)  # hands x (width 4) to the adapter
        out = layer(hidden)  # the projection reads width 7
        assert receive(layer.handoff_key) is None  # taken, not left behind
    assert tuple(out.shape) == (2, 5)
    assert tuple(layer.block.down.kernel.shape) == (4, 3)


def test_a_handoff_lives_only_as_long_as_its_forward_scope():
    import numpy as np
    import pytest

    from tf_adapters.core.forward_scope import forward_scope
    from tf_adapters.methods.bottleneck import InputTap

    layer = ParallelBottleneckLayer(keras.layers.Dense(5), "t", 3, input_dim=4)
    tap = InputTap(keras.layers.Dense(7), "t", target=layer)
    x, hidden = np.ones((2, 4), "float32"), np.ones((2, 7), "float32")
    with forward_scope():
        tap(x)  # handed over, never taken in this call
    for scope in (forward_scope(), contextlib.nullcontext()):
        with scope, pytest.raises(RuntimeError, match="received no input"):
            layer(hidden)  # a new call, or no call at all: nothing left


def test_prompt_embedding_config_round_trip_and_keras_file(tmp_path):
    import numpy as np

    from tf_adapters.methods.prompt_tuning import PromptEmbedding

    table = PromptEmbedding(4, 6, "t")
    ids = np.array([[0, 3, 1]])
    out = table(ids)
    revived = PromptEmbedding.from_config(table.get_config())
    assert revived.get_config() == table.get_config()
    inputs = keras.Input((3,), dtype="int32")
    model = keras.Model(inputs, table(inputs))
    model.save(str(tmp_path / "p.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "p.keras"))
    np.testing.assert_array_equal(np.asarray(reloaded(ids)), np.asarray(out))
