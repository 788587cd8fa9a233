"""The public API (issue 15): everything a user needs is in `help(tfa)`,
and every exported function or class has a docstring with an example."""

import inspect
import os
import subprocess
import sys
import textwrap

import tf_adapters as tfa

PROMISED = {
    "load_base",
    "export_saved_model",
    "export_hf",
    "LabelWordClassifier",
    "LastTokenClassifier",
    "LanguageModel",
    "FinetuneConfig",
    "run_finetune",
    "add_adapter",
    "load_adapter",
    "save_adapter",
    "merge_and_unload",
    "loraplus_optimizer",
    "add_weighted_adapter",
}


def test_promised_names_are_exported_at_the_top_level():
    assert PROMISED <= set(tfa.__all__)
    for name in tfa.__all__:
        assert hasattr(tfa, name), name


def test_every_exported_name_documents_an_example():
    missing = [
        name
        for name in tfa.__all__
        if ">>>" not in (inspect.getdoc(getattr(tfa, name)) or "")
    ]
    assert not missing, f"no runnable example in the docstring of {missing}"
    skipped = [
        name
        for name in tfa.__all__
        if "+SKIP" in (inspect.getdoc(getattr(tfa, name)) or "")
    ]
    assert not skipped, f"examples that do not run: {skipped}"


def test_every_exported_name_documents_its_arguments_and_result():
    missing = []
    for name in tfa.__all__:
        obj = getattr(tfa, name)
        doc = inspect.getdoc(obj) or ""
        sections = ["Args:"] + ([] if inspect.isclass(obj) else ["Returns:"])
        missing += [f"{name}: {s}" for s in sections if s not in doc]
    assert not missing, missing


def test_help_lists_the_whole_api():
    doc = tfa.__doc__
    missing = [name for name in tfa.__all__ if f"`{name}`" not in doc]
    assert not missing, missing


def test_import_registers_every_keras_class():
    # Keras imports no module of ours to find a class in a `.keras` file:
    # `import tf_adapters` must register every class that any module does,
    # although some subpackages import their layers lazily.
    script = textwrap.dedent(
        """
        import importlib, pathlib, keras, tf_adapters
        registered = set(keras.saving.get_custom_objects())
        root = pathlib.Path(tf_adapters.__file__).parent
        for path in sorted(root.rglob("*.py")):
            if "register_keras_serializable" in path.read_text():
                parts = path.relative_to(root.parent).with_suffix("").parts
                importlib.import_module(".".join(parts))
        print(sorted(set(keras.saving.get_custom_objects()) - registered))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[-1] == "[]"
