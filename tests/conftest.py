import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import sys

sys.path.insert(0, os.path.dirname(__file__))

# Scripts that wrote the file fixtures with the round-1 code: not tests, and
# not to be imported (`--doctest-modules` would run them).
collect_ignore_glob = ["fixtures/*.py"]

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A tiny random-weight GPT-2 causal LM (real BPE tokenizer), saved as
    a local keras-hub preset that `--model` can name."""
    import tiny_models

    path = tmp_path_factory.mktemp("preset") / "tiny_gpt2"
    tiny_models.gpt2_causal_lm().save_to_preset(str(path))
    return str(path)


@pytest.fixture()
def count_traces(monkeypatch):
    """`count_traces("train_step")` returns a list that grows by one each
    time tf.function traces that step of a Keras model (Python runs the
    step's body only while tracing)."""
    from tf_adapters.compat.trainer import tensorflow_trainer_class

    TensorFlowTrainer = tensorflow_trainer_class()

    def count(name):
        traces = []
        step = getattr(TensorFlowTrainer, name)

        def counted(self, data):
            traces.append(1)
            return step(self, data)

        monkeypatch.setattr(TensorFlowTrainer, name, counted)
        return traces

    return count


def pytest_collection_modifyitems(config, items):
    """`large` tests (real weights, long runs) run only with `-m large`."""
    if "large" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="large: opt in with `-m large`")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)
