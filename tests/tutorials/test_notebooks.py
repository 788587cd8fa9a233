"""The tutorial notebooks: each one runs in quick mode without an error,
and each committed notebook carries the outputs of a real run.

Quick mode (what `tutorials/execute.py --quick` runs): `TF_ADAPTERS_QUICK=1`
cuts steps and data sizes, and `TF_ADAPTERS_TUTORIAL_MODEL` points the
notebooks at a 1-layer cut of the embedded default model, so that the same
code runs in a few minutes on 2 CPU cores. The committed notebooks are
never modified: each test executes a copy, in a temporary directory.
"""

import glob
import importlib.util
import os

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))
CELL_TIMEOUT = 300


def _execute_module():
    path = os.path.join(ROOT, "tutorials", "execute.py")
    spec = importlib.util.spec_from_file_location("tutorial_execute", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _name(path):
    return os.path.basename(path)


def _error_cells(nb):
    """Indices (among code cells) of the cells with an error output."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return [
        i
        for i, cell in enumerate(code)
        if any(o.output_type == "error" for o in cell.outputs)
    ]


def test_nine_notebooks():
    assert [_name(p)[:3] for p in NOTEBOOKS] == [
        f"{i:02d}_" for i in range(1, 10)
    ], [_name(p) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{_name(path)} has no code cells"
    for i, cell in enumerate(code):
        assert cell.get("execution_count"), (
            f"{_name(path)}: code cell {i} was not executed; run "
            "`python tutorials/execute.py` and commit the result"
        )
    errors = _error_cells(nb)
    assert not errors, f"{_name(path)}: code cells {errors} have error outputs"
    assert any(c.outputs for c in code), f"{_name(path)} has no outputs"


@pytest.fixture(scope="module")
def quick_env(tmp_path_factory):
    """Quick mode for the kernels the tests start (they inherit
    `os.environ`)."""
    execute = _execute_module()
    model = execute.make_quick_model(str(tmp_path_factory.mktemp("quick")))
    saved = {k: os.environ.get(k) for k in execute.QUICK_ENV}
    os.environ["TF_ADAPTERS_QUICK"] = "1"
    os.environ["TF_ADAPTERS_TUTORIAL_MODEL"] = model
    yield execute
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_runs_in_quick_mode(path, quick_env, tmp_path):
    before = os.path.getmtime(path)
    # Raises CellExecutionError on the first failing cell; what the notebook
    # writes under TMPDIR (adapters, SavedModels) is deleted afterwards.
    nb, _ = quick_env.execute(
        path, save=False, cwd=str(tmp_path), timeout=CELL_TIMEOUT
    )
    assert not _error_cells(nb)
    assert os.path.getmtime(path) == before
    # Notebooks write into their own temporary directories only.
    assert not os.listdir(tmp_path), os.listdir(tmp_path)
