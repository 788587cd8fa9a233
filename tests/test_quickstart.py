"""The README's Python quick start runs as written: on a 1-layer cut of the
embedded model with fewer examples here, and exactly as printed (the
embedded model, every example) with `-m large`."""

import os
import re

import numpy as np
import pytest

import tf_adapters as tfa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_code(section="quickstart"):
    """The Python block between the README's `<!-- section:start -->` and
    `<!-- section:end -->` markers."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    assert text.count(start) == 1 and text.count(end) == 1, "markers"
    block = text.split(start)[1].split(end)[0]
    (code,) = re.findall(r"```python\n(.*?)```", block, re.S)
    return code


def _replace_once(code, old, new):
    assert code.count(old) == 1, f"the quick start no longer has {old!r}"
    return code.replace(old, new)


def _run(code, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    scope = {"__name__": "quickstart"}
    exec(compile(code, "README.md (quick start)", "exec"), scope)
    return scope


def _check(scope, cwd, n_test):
    x_test, y_test = scope["x_test"], scope["y_test"]
    assert len(y_test) == n_test
    # The adapter trained, the reloaded `.keras` model and the served
    # SavedModel give the same scores.
    keras_logits = scope["model"].predict(x_test, verbose=0)
    reloaded = scope["reloaded"].predict(x_test, verbose=0)
    served = scope["served"]["probabilities"].numpy()
    assert abs(keras_logits - reloaded).max() < 1e-4
    expected = np.exp(keras_logits[:2])
    expected /= expected.sum(-1, keepdims=True)
    assert abs(expected - served).max() < 1e-4
    assert os.path.isfile(os.path.join(cwd, "quickstart", "model.keras"))
    assert os.listdir(os.path.join(cwd, "quickstart", "adapter"))
    assert scope["path"].startswith("saved_models")


@pytest.fixture(scope="module")
def one_layer_model(tmp_path_factory):
    """The embedded model's first decoder layer (its tokenizer, embeddings
    and norm), as a preset folder."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "tutorials"))
    try:
        import execute
    finally:
        sys.path.pop(0)
    return execute.make_quick_model(str(tmp_path_factory.mktemp("one_layer")))


def test_quickstart_runs_on_a_small_model(
    tmp_path, monkeypatch, one_layer_model
):
    model = one_layer_model
    code = readme_code()
    code = _replace_once(code, "tfa.load_base()", f"tfa.load_base({model!r})")
    code = _replace_once(code, '["train"][:768]', '["train"][:32]')
    code = _replace_once(code, "test=200", "test=8")
    scope = _run(code, tmp_path, monkeypatch)
    _check(scope, str(tmp_path), 8)


def test_library_example_runs_on_a_small_model(
    tmp_path, monkeypatch, one_layer_model, capsys
):
    code = readme_code("library")
    code = _replace_once(
        code,
        "tfa.load_base(sequence_length=128)",
        f"tfa.load_base({one_layer_model!r}, sequence_length=32)",
    )
    code = _replace_once(
        code, "tfa.load_base(),", f"tfa.load_base({one_layer_model!r}),"
    )
    code = _replace_once(code, "texts[:64]", "texts[:8]")
    scope = _run(code, tmp_path, monkeypatch)
    assert "The film follows" in capsys.readouterr().out
    assert tfa.list_adapters(scope["plain"]) == []
    assert "Adapted" not in type(scope["plain"]).__name__


@pytest.mark.large
def test_quickstart_as_printed(tmp_path, monkeypatch):
    scope = _run(readme_code(), tmp_path, monkeypatch)
    _check(scope, str(tmp_path), 200)
    accuracy = scope["results"]["accuracy"]
    print(f"quick start test accuracy: {accuracy:.4f}")
    assert accuracy > 0.7  # the frozen base scores about 0.6
