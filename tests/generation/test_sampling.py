import numpy as np
import tensorflow as tf
import tiny_models

from tf_adapters.generation.sampling import TensorSampler
from tf_adapters.generation.sampling import next_token

LOGITS = np.log(np.array([0.5, 0.25, 0.15, 0.1], "float32"))


def _draws(temperature=1.0, top_k=0, top_p=1.0, n=4000, seed=3):
    logits = tf.constant(np.tile(LOGITS, (n, 1)))
    out = next_token(logits, temperature, top_k, top_p, tf.constant([seed, 0]))
    return np.bincount(out.numpy(), minlength=4) / n


def test_temperature_one_draws_from_the_softmax():
    freq = _draws()
    # 4000 draws: the standard error of each frequency is <= 0.008.
    np.testing.assert_allclose(freq, [0.5, 0.25, 0.15, 0.1], atol=0.03)


def test_greedy_top_k_and_top_p_cuts():
    np.testing.assert_array_equal(_draws(temperature=0.0), [1, 0, 0, 0])
    np.testing.assert_array_equal(_draws(top_k=1), [1, 0, 0, 0])
    freq = _draws(top_k=2)
    assert freq[2:].sum() == 0
    np.testing.assert_allclose(freq[:2], [2 / 3, 1 / 3], atol=0.03)
    # p = 0.7: {0.5, 0.25} reach it; 0.15 and 0.1 are cut.
    freq = _draws(top_p=0.7)
    assert freq[2:].sum() == 0 and freq[1] > 0.2
    np.testing.assert_array_equal(_draws(top_p=0.4), [1, 0, 0, 0])


def test_temperature_sharpens_and_flattens():
    cold, hot = _draws(temperature=0.25), _draws(temperature=4.0)
    assert cold[0] > 0.9
    assert hot[0] < 0.35 and hot[3] > 0.17


def test_same_seed_same_draws_other_seed_other_draws():
    logits = tf.constant(np.tile(LOGITS, (64, 1)))
    a = next_token(logits, 1.0, 0, 1.0, tf.constant([5, 2])).numpy()
    b = next_token(logits, 1.0, 0, 1.0, tf.constant([5, 2])).numpy()
    c = next_token(logits, 1.0, 0, 1.0, tf.constant([6, 2])).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_sampler_in_generate_step_matches_greedy_at_temperature_zero():
    model = tiny_models.gpt2_causal_lm()
    x = model.preprocessor.generate_preprocess([" the air"], sequence_length=12)
    model.compile(sampler="greedy")
    greedy = model.generate_step(x)["token_ids"].numpy()
    model.sampler = TensorSampler(temperature=0.0, seed=1)
    np.testing.assert_array_equal(
        model.generate_step(x)["token_ids"].numpy(), greedy
    )
    model.sampler = TensorSampler(temperature=1.0, seed=1)
    first = model.generate_step(x)["token_ids"].numpy()
    np.testing.assert_array_equal(
        model.generate_step(x)["token_ids"].numpy(), first
    )
