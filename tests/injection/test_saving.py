import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa

METHODS = ["lora", "dora", "pissa", "houlsby", "pfeiffer", "parallel"]
METHODS += ["ia3", "prompt"]


@pytest.mark.parametrize("method", METHODS)
def test_keras_file_round_trip_of_causal_lm(method, tmp_path):
    model = tiny_models.gpt2_causal_lm()
    tfa.add_adapter(model, tiny_models.all_configs()[method], name="t")
    tiny_models.randomize_adapter(model)
    x = tiny_models.inputs(length=8, seed=3)
    x["token_ids"] = x["token_ids"] % 20
    expected = np.asarray(model(x))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded).__name__ == "AdaptedGPT2CausalLM"
    assert tfa.list_adapters(loaded) == ["t"]
    assert tfa.active_adapter(loaded) == "t"
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)
    # Still trainable adapter-only after reload.
    assert {v.path for v in loaded.trainable_weights} == {
        v.path for v in model.trainable_weights
    }


def test_keras_round_trip_keeps_several_adapters_and_merge_state(tmp_path):
    backbone = tiny_models.backbone("llama")
    x = tiny_models.inputs()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="a")
    tiny_models.randomize_adapter(backbone, seed=1)
    tfa.add_adapter(backbone, tfa.IA3Config(), name="b", activate=False)
    tfa.set_active_adapter(backbone, "b")
    tiny_models.randomize_adapter(backbone, seed=2)
    tfa.set_active_adapter(backbone, "a")
    tfa.merge_adapter(backbone)
    expected = np.asarray(backbone(x))
    path = str(tmp_path / "b.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path)
    assert tfa.list_adapters(loaded) == ["a", "b"]
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)
    # The merge state survived: unmerging gives the same outputs again and
    # switching to "b" gives b's outputs, identical to the original model.
    tfa.unmerge_adapter(loaded)
    tfa.unmerge_adapter(backbone)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)
    tfa.set_active_adapter(loaded, "b")
    tfa.set_active_adapter(backbone, "b")
    np.testing.assert_allclose(
        np.asarray(loaded(x)), np.asarray(backbone(x)), atol=1e-5
    )


def test_keras_file_loads_in_a_fresh_process_with_safe_mode(tmp_path):
    backbone = tiny_models.backbone("gemma")
    x = tiny_models.inputs()
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    tiny_models.randomize_adapter(backbone)
    np.save(tmp_path / "expected.npy", np.asarray(backbone(x)))
    np.savez(tmp_path / "x.npz", **x)
    backbone.save(str(tmp_path / "m.keras"))
    script = textwrap.dedent(
        f"""
        import numpy as np, keras, tf_adapters
        m = keras.saving.load_model({str(tmp_path / "m.keras")!r},
                                    safe_mode=True)
        x = dict(np.load({str(tmp_path / "x.npz")!r}))
        np.testing.assert_allclose(
            np.asarray(m(x)), np.load({str(tmp_path / "expected.npy")!r}),
            atol=1e-5)
        print("OK", type(m).__name__)
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK AdaptedGemmaBackbone" in out.stdout


@pytest.mark.parametrize("method", ["lora", "prompt"])
def test_generate_works_with_adapters(method):
    model = tiny_models.gpt2_causal_lm()
    model.compile(sampler="greedy")
    base = model.generate([" airplane"], max_length=10)
    tfa.add_adapter(model, tiny_models.all_configs()[method], name="t")
    tiny_models.randomize_adapter(model)
    out = model.generate([" airplane", " airport"], max_length=10)
    assert len(out) == 2 and all(o.startswith(" airplane") for o in out[:1])
    assert model.generate([" airplane"], max_length=10) != base
    tfa.disable_adapters(model)
    assert model.generate([" airplane"], max_length=10) == base


def test_parallel_adapter_reads_the_block_input_in_generate(monkeypatch):
    # keras-hub's cached generation calls each decoder layer itself; the
    # tap must still hand the feed-forward input over in every call.
    from tf_adapters.methods.bottleneck import parallel_layer

    received = []
    receive = parallel_layer.receive

    def spy(key):
        value = receive(key)
        received.append(value is not None)
        return value

    monkeypatch.setattr(parallel_layer, "receive", spy)
    model = tiny_models.gpt2_causal_lm()
    model.compile(sampler="greedy")
    tfa.add_adapter(model, tiny_models.all_configs()["parallel"], name="t")
    model.generate([" airplane"], max_length=10)
    assert received and all(received)


def test_reloaded_backbone_still_receives_training_flag(tmp_path):
    # Keras passes `training` only to a `call` that declares it; dropout
    # must stay active in `fit` after a `.keras` round trip.
    backbone = tiny_models.backbone("gpt2")
    tfa.add_adapter(backbone, tfa.LoraConfig(rank=2), name="t")
    backbone.save(str(tmp_path / "b.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "b.keras"))
    assert loaded._call_has_training_arg
    x = tiny_models.inputs()
    train_out = np.asarray(loaded(x, training=True))
    assert not np.allclose(train_out, np.asarray(loaded(x, training=False)))
