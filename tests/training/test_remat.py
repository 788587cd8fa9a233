"""Gradient checkpointing of the decoder blocks (`--remat`): the same
losses and gradients as without it, with each block's forward really run
a second time in the backward pass, in eager mode, under `tf.function`
and with XLA."""

import functools
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_adapters as tfa
from tests import finetune_runs
from tests import tiny_models
from tf_adapters.cli.main import main
from tf_adapters.compat.class_swap import base_class_of
from tf_adapters.core.forward_scope import ForwardScopeMixin
from tf_adapters.pipeline.config import FinetuneConfig
from tf_adapters.tasks.language_model import LanguageModel
from tf_adapters.training.remat import CheckpointedBlockMixin
from tf_adapters.training.remat import checkpoint_decoder_layers
from tf_adapters.training.remat import is_checkpointed

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
MODES = {
    "eager": lambda f: f,
    "function": tf.function,
    "xla": lambda f: tf.function(f, jit_compile=True),
}


def _adapted(family, method="lora"):
    """A tiny backbone (GPT-2's has dropout 0.1) with a random adapter;
    LoRA's has dropout too, so the recomputed masks must match."""
    backbone = tiny_models.backbone(family)
    config = (
        tfa.LoraConfig(rank=2, alpha=4, dropout=0.2)
        if method == "lora"
        else tiny_models.all_configs()[method]
    )
    tfa.add_adapter(backbone, config, name="a")
    tiny_models.randomize_adapter(backbone)
    return backbone


def _loss_and_gradients(backbone, mode):
    def step(x):
        with tf.GradientTape() as tape:
            outputs = backbone(x, training=True)
            loss = tf.reduce_sum(tf.square(outputs))
        return loss, tape.gradient(loss, backbone.trainable_weights)

    loss, grads = MODES[mode](step)(tiny_models.inputs())
    # (Prompt tuning's gradient is `IndexedSlices`.)
    return float(loss), [np.asarray(tf.convert_to_tensor(g)) for g in grads]


def _assert_same(got, expected):
    """`(loss, gradients)` equal to `expected` within `TOLERANCE`."""
    (loss, grads), (expected_loss, expected_grads) = got, expected
    np.testing.assert_allclose(loss, expected_loss, **TOLERANCE)
    assert len(grads) == len(expected_grads)
    for grad, want in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(grad, want, **TOLERANCE)


@pytest.fixture()
def count_block_calls(monkeypatch):
    """`count_block_calls(backbone)` returns a list that grows by one each
    time a decoder block's own `call` runs (in eager mode, or while
    `tf.function` traces)."""

    def count(backbone):
        calls = []
        cls = type(backbone.transformer_layers[0])
        call = cls.call

        @functools.wraps(call)  # Keras reads `call`'s signature
        def counted(self, *args, **kwargs):
            calls.append(kwargs.get("training"))
            return call(self, *args, **kwargs)

        monkeypatch.setattr(cls, "call", counted)
        return calls

    return count


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_remat_gives_the_same_loss_and_adapter_gradients(
    family, mode, count_block_calls
):
    plain = _adapted(family)
    calls = count_block_calls(plain)
    expected = _loss_and_gradients(plain, mode)
    # Once per block without checkpointing...
    assert len(calls) == 2
    checkpointed = _adapted(family)
    checkpoint_decoder_layers(checkpointed)
    calls.clear()
    got = _loss_and_gradients(checkpointed, mode)
    # ... and again in the backward pass with it: the recomputation runs.
    assert len(calls) == 4
    assert len(got[1]) == 8  # LoRA's A and B of 2 × (query, value)
    _assert_same(got, expected)


@pytest.mark.parametrize("method", list(tiny_models.all_configs()))
def test_remat_with_every_adapter_method(method):
    expected = _loss_and_gradients(_adapted("llama", method), "function")
    checkpointed = _adapted("llama", method)
    checkpoint_decoder_layers(checkpointed)
    _assert_same(_loss_and_gradients(checkpointed, "function"), expected)


def _optimized_hlo_dots(backbone):
    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(backbone(x, training=True)))
        return tape.gradient(loss, backbone.trainable_weights)

    hlo = step.experimental_get_compiler_ir(tiny_models.inputs())(
        stage="optimized_hlo"
    )
    return len(re.findall(r" dot\(", hlo))


def test_xla_keeps_the_recomputation():
    # XLA could merge the recomputed forward with the first one (common
    # subexpressions) and keep every activation after all: the optimized
    # program must still multiply more with checkpointing than without.
    plain = _optimized_hlo_dots(_adapted("llama"))
    checkpointed = _adapted("llama")
    checkpoint_decoder_layers(checkpointed)
    assert _optimized_hlo_dots(checkpointed) > plain


def test_fit_with_remat_trains_the_same_weights(count_block_calls):
    tokens = tiny_models.inputs(batch=4, length=9, pad=False)["token_ids"]
    x = {"token_ids": tokens[:, :-1], "padding_mask": np.ones((4, 8), "int32")}
    labels = tokens[:, 1:]
    weights = {}
    for remat in (False, True):
        backbone = _adapted("gpt2")
        calls = count_block_calls(backbone)
        if remat:
            checkpoint_decoder_layers(backbone)
        model = LanguageModel(backbone)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        model.fit(x, labels, batch_size=2, epochs=1, verbose=0)
        weights[remat] = [np.asarray(w) for w in backbone.trainable_weights]
        # `fit` calls the blocks with `training=True`: the train step is
        # traced once, and with remat each block runs twice in it.
        assert calls.count(True) == (4 if remat else 2)
    for got, want in zip(weights[True], weights[False], strict=True):
        np.testing.assert_allclose(got, want, **TOLERANCE)


def test_blocks_report_remat_on_and_off():
    model = tiny_models.gpt2_causal_lm()
    decoder = type(model.backbone.transformer_layers[0])
    blocks = checkpoint_decoder_layers(model)  # a task: its backbone's
    assert blocks == list(model.backbone.transformer_layers)
    assert all(is_checkpointed(b) for b in blocks)
    # The class name stays: `.keras` files key weights by it.
    assert type(blocks[0]).__name__ == decoder.__name__
    checkpoint_decoder_layers(model)  # twice is once
    assert type(blocks[0]).__bases__ == (CheckpointedBlockMixin, decoder)
    x = tiny_models.inputs()
    x["token_ids"] %= model.backbone.vocabulary_size
    on = np.asarray(model(x))  # inference: not checkpointed, same logits
    checkpoint_decoder_layers(model.backbone, enabled=False)
    assert not any(is_checkpointed(b) for b in blocks)
    assert type(blocks[0]) is decoder
    np.testing.assert_allclose(np.asarray(model(x)), on, rtol=1e-6)


@pytest.mark.parametrize("remat_first", [True, False])
def test_remat_with_a_parallel_adapter_either_way_round(remat_first):
    # The parallel adapter swaps a forward scope into the same blocks.
    expected = _loss_and_gradients(_adapted("llama", "parallel"), "function")
    if remat_first:
        backbone = tiny_models.backbone("llama")
        decoder = type(backbone.transformer_layers[0])
        checkpoint_decoder_layers(backbone)
        parallel = tiny_models.all_configs()["parallel"]
        tfa.add_adapter(backbone, parallel, name="a")
        tiny_models.randomize_adapter(backbone)
    else:
        backbone = _adapted("llama", "parallel")
        decoder = base_class_of(backbone.transformer_layers[0])
        checkpoint_decoder_layers(backbone)
    blocks = backbone.transformer_layers
    assert all(isinstance(b, ForwardScopeMixin) for b in blocks)
    _assert_same(_loss_and_gradients(backbone, "function"), expected)
    # Deleting the adapter takes its scope out and leaves remat on.
    tfa.delete_adapter(backbone, "a")
    assert all(is_checkpointed(b) for b in blocks)
    assert not any(isinstance(b, ForwardScopeMixin) for b in blocks)
    checkpoint_decoder_layers(backbone, enabled=False)
    assert all(type(b) is decoder for b in blocks)


def test_a_model_without_decoder_blocks_is_refused():
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Sequential has no decoder blocks"):
        checkpoint_decoder_layers(dense)
    with pytest.raises(TypeError, match="must be a keras-hub backbone"):
        checkpoint_decoder_layers("gpt2")
    with pytest.raises(TypeError, match="`enabled` must be a bool"):
        checkpoint_decoder_layers(tiny_models.backbone(), enabled="yes")


def test_config_validates_remat():
    assert FinetuneConfig().remat is False
    with pytest.raises(TypeError, match="`remat` must be bool"):
        FinetuneConfig(remat="yes")
    with pytest.raises(ValueError, match="method='linear_probe'"):
        FinetuneConfig(method="linear_probe", remat=True)


def test_finetune_remat_flag_runs_and_is_recorded(
    tmp_path, tiny_preset, count_block_calls
):
    # The preset is a tiny GPT-2: its blocks are of this class too.
    calls = count_block_calls(tiny_models.gpt2())
    output = tmp_path / "run"
    argv = ["finetune", "--remat", "--no-jit-compile", "--no-export"]
    argv += ["--no-evaluate-base", "--model", tiny_preset, "--data"]
    argv += [finetune_runs.write_data(str(tmp_path)), "--labels", "air"]
    argv += ["plane", "--template", "{text} is", "--steps", "2"]
    argv += ["--batch-size", "4", "--sequence-length", "12"]
    argv += ["--test-size", "6", "--output", str(output)]
    assert main(argv) == 0
    report = json.loads((output / "report.json").read_text())
    assert report["remat"] is True
    assert report["reproduce"]["options"]["remat"] is True
    assert os.path.isdir(output / "adapter")
    # The training step (traced once) ran each of the 2 blocks twice.
    assert calls.count(True) == 4
