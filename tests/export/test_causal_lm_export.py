import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tiny_models

import tf_adapters as tfa
from tf_adapters.export.saved_model import export_saved_model
from tf_adapters.generation.sampling import TensorSampler

PROMPTS = [" airplane at", " the"]
NEW = 5


def _python(script):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A LoRA-adapted tiny GPT-2, its expected outputs, and its export."""
    tmp = tmp_path_factory.mktemp("export")
    model = tiny_models.gpt2_causal_lm()
    tfa.add_adapter(model, tfa.LoraConfig(rank=2), name="t")
    tiny_models.randomize_adapter(model)
    before = [v.numpy() for v in model.weights]
    path = export_saved_model(model, str(tmp), "lm")
    model.compile(sampler="greedy")
    x = model.preprocessor.generate_preprocess(PROMPTS, sequence_length=12)
    expected = {
        "token_ids": np.asarray(x["token_ids"]).tolist(),
        "padding_mask": np.asarray(x["padding_mask"]).astype(int).tolist(),
        "logits": np.asarray(model(x)).tolist(),
        "generated": [],
    }
    for prompt in PROMPTS:
        n = int(
            np.sum(
                model.preprocessor.generate_preprocess([prompt])["padding_mask"]
            )
        )
        expected["generated"] += model.generate([prompt], max_length=n + NEW)
    # The same sampling options through keras-hub's `generate_step`.
    model.sampler = TensorSampler(temperature=1.5, top_k=8, top_p=0.9, seed=4)
    room = np.zeros((2, 8), "int32")
    out = model.generate_step(
        {
            "token_ids": np.concatenate([x["token_ids"][:, :4], room], 1),
            "padding_mask": np.concatenate([np.ones((2, 4)), room], 1) > 0,
        },
        stop_token_ids=[model.preprocessor.tokenizer.end_token_id],
    )
    keep = np.asarray(out["padding_mask"])
    expected["sampled_ids"] = np.where(keep, out["token_ids"], 0).tolist()
    model.compile(sampler="greedy")
    (tmp / "expected.json").write_text(json.dumps(expected))
    return model, before, path, tmp


def test_export_leaves_the_model_exactly_as_it_was(exported):
    model, before, path, _ = exported
    assert path.endswith(os.path.join("lm", "1"))
    for var, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(var.numpy(), value)
    assert tfa.active_adapter(model) == "t"


def test_signatures_match_keras_in_a_fresh_process(exported):
    _, _, path, tmp = exported
    out = _python(
        f"""
        import json, numpy as np, tensorflow as tf
        import tensorflow_text  # registers the tokenizer's ops
        e = json.load(open({str(tmp / "expected.json")!r}))
        m = tf.saved_model.load({path!r})
        print(sorted(m.signatures))
        ids = tf.constant(e["token_ids"], tf.int32)
        mask = tf.constant(e["padding_mask"], tf.int32)
        logits = m.signatures["logits"](token_ids=ids, padding_mask=mask)
        np.testing.assert_allclose(
            logits["logits"].numpy(), np.array(e["logits"]), atol=1e-5)
        out = m.signatures["serving_default"](
            prompts=tf.constant({PROMPTS!r}),
            max_new_tokens=tf.constant({NEW}))["outputs"].numpy()
        assert [s.decode() for s in out] == e["generated"], (out, e)
        def sample(temperature, top_k, top_p, seed):
            return m.signatures["sample"](
                prompts=tf.constant({PROMPTS!r}),
                max_new_tokens=tf.constant({NEW}),
                temperature=tf.constant(temperature), top_k=tf.constant(top_k),
                top_p=tf.constant(top_p), seed=tf.constant(seed),
            )["outputs"].numpy().tolist()
        assert sample(0.0, 0, 1.0, 9) == out.tolist()  # 0 is greedy
        assert sample(1.0, 1, 1.0, 9) == out.tolist()  # top-1 is greedy
        assert sample(1.5, 0, 1.0, 9) == sample(1.5, 0, 1.0, 9)
        full = np.ones((2, 4), "int32")
        sampled = m.signatures["sample_ids"](
            token_ids=ids[:, :4], padding_mask=full,
            max_new_tokens=tf.constant(8), temperature=tf.constant(1.5),
            top_k=tf.constant(8), top_p=tf.constant(0.9),
            seed=tf.constant(4))["token_ids"].numpy()
        np.testing.assert_array_equal(sampled, e["sampled_ids"])
        gen = m.signatures["generate_ids"](
            token_ids=ids, padding_mask=mask,
            max_new_tokens=tf.constant({NEW}))
        lengths = gen["padding_mask"].numpy().sum(1)
        assert (lengths <= mask.numpy().sum(1) + {NEW}).all(), lengths
        print("OK")
        """
    )
    assert "OK" in out
    assert (
        "['generate', 'generate_ids', 'logits', 'sample', 'sample_ids', "
        "'serving_default']" in out
    )


def test_saved_model_cli_runs_generate_ids_and_logits(exported, tmp_path):
    # The ids-only export holds stock TensorFlow ops only (no TF Text), as
    # stock TF Serving and saved_model_cli need.
    model = exported[0]
    path = export_saved_model(model, str(tmp_path), "lm", text=False)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    arrays = {
        "token_ids": np.array([[3, 5, 7]], "int32"),
        "padding_mask": np.array([[1, 1, 1]], "int32"),
        "max_new_tokens": np.array(4, "int32"),
    }
    for key, value in arrays.items():
        np.save(tmp_path / f"{key}.npy", value)
    for signature, keys in [
        ("generate_ids", ["token_ids", "padding_mask", "max_new_tokens"]),
        ("logits", ["token_ids", "padding_mask"]),
    ]:
        inputs = ";".join(f"{k}={tmp_path / (k + '.npy')}" for k in keys)
        out = subprocess.run(
            [
                cli,
                "run",
                "--dir",
                path,
                "--tag_set",
                "serve",
                "--signature_def",
                signature,
                "--inputs",
                inputs,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert "Result for output key" in out.stdout, out.stdout


@pytest.mark.parametrize("method, merge", [("lora", False), ("prompt", True)])
def test_unmerged_and_unmergeable_adapters_export(tmp_path, method, merge):
    import tensorflow as tf

    model = tiny_models.gpt2_causal_lm()
    tfa.add_adapter(model, tiny_models.all_configs()[method], name="t")
    tiny_models.randomize_adapter(model)
    path = export_saved_model(model, str(tmp_path), "lm", merge=merge)
    model.compile(sampler="greedy")
    loaded = tf.saved_model.load(path)
    x = model.preprocessor.generate_preprocess(PROMPTS[:1])
    n = int(np.sum(x["padding_mask"]))
    out = loaded.signatures["serving_default"](
        prompts=tf.constant(PROMPTS[:1]), max_new_tokens=tf.constant(NEW)
    )["outputs"].numpy()
    assert out[0].decode() == model.generate(PROMPTS[:1], max_length=n + NEW)[0]


def test_bad_export_arguments(tmp_path):
    model = tiny_models.gpt2_causal_lm()
    with pytest.raises(TypeError, match="must be a keras-hub CausalLM"):
        export_saved_model(model.backbone, str(tmp_path))
    with pytest.raises(ValueError, match="must be a folder name"):
        export_saved_model(model, str(tmp_path), name="a/b")


def test_prompts_beyond_the_context_fail_clearly(exported):
    import tensorflow as tf

    _, _, path, _ = exported
    loaded = tf.saved_model.load(path)
    ids = tf.ones((1, 60), tf.int32)  # the tiny model's context is 64
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"exceed the context of the model \(64 tokens\)",
    ):
        loaded.signatures["generate_ids"](
            token_ids=ids, padding_mask=ids, max_new_tokens=tf.constant(10)
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be >= 0"):
        loaded.signatures["generate_ids"](
            token_ids=ids, padding_mask=ids, max_new_tokens=tf.constant(-1)
        )
