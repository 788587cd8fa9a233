"""The tutorial notebooks: each one runs in quick mode without an error,
each committed notebook carries the outputs of a real run, and their code
uses only the public API (`import tf_adapters as tfa`, `tfa.<name>` with
`name` in `tfa.__all__`).

Quick mode (what `tutorials/execute.py --quick` runs): `TF_ADAPTERS_QUICK=1`
cuts steps and data sizes, and `TF_ADAPTERS_TUTORIAL_MODEL` points the
notebooks at a 1-layer cut of the embedded default model, so that the same
code runs in a few minutes on 2 CPU cores. The committed notebooks are
never modified: each test executes a copy, in a temporary directory.
"""

import ast
import datetime
import glob
import importlib.util
import os

import nbformat
import pytest

import tf_adapters as tfa

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


def internal_uses(sources):
    """What code `sources` (one string per code cell) uses of `tf_adapters`
    beyond its public names, as `"cell N, line L: ..."` lines (N counts
    code cells from 0).

    Public: `import tf_adapters` (with or without an alias), then
    `<alias>.<name>` with `name` in `tfa.__all__` or a dunder such as
    `__version__`; `from tf_adapters import <name>` with the same names.
    Anything else (a submodule imported, reached as an attribute or by
    `importlib.import_module`, or a name not in `__all__`) is listed.
    """
    public = set(tfa.__all__)
    aliases, found = set(), []
    for index, source in enumerate(sources):
        for node in ast.walk(ast.parse(source)):
            problem = _internal_use(node, aliases, public)
            if problem:
                found.append(f"cell {index}, line {node.lineno}: {problem}")
    return found


def _internal_use(node, aliases, public):
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "tf_adapters":
                aliases.add(alias.asname or alias.name)
            elif alias.name.startswith("tf_adapters."):
                return f"`import {alias.name}`"
    elif isinstance(node, ast.ImportFrom) and node.module:
        if node.module.startswith("tf_adapters."):
            return f"`from {node.module} import ...`"
        if node.module == "tf_adapters":
            hidden = [a.name for a in node.names if a.name not in public]
            if hidden:
                return f"`from tf_adapters import {', '.join(hidden)}`"
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        name = node.attr
        dunder = name.startswith("__") and name.endswith("__")
        if node.value.id in aliases and name not in public and not dunder:
            return f"`{node.value.id}.{name}` is not in `tfa.__all__`"
    elif isinstance(node, ast.Call) and node.args:
        first = node.args[0]
        if (
            isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value.startswith("tf_adapters.")
            and ast.unparse(node.func).endswith(("import_module", "__import__"))
        ):
            return f"imports {first.value!r}"
    return None


def test_internal_uses_finds_every_way_in():
    cells = [
        "import tf_adapters as tfa\nfrom tf_adapters import load_base",
        "tfa.load_base()\ntfa.LoraConfig(rank=8).scale\ntfa.__version__",
        "from tf_adapters.models.loading import load_base",
        "import tf_adapters.data.api",
        "tfa.data.api.load_data()",
        "tfa.not_exported_name",
        "from tf_adapters import tasks",
        "import importlib\nimportlib.import_module('tf_adapters.tasks')",
    ]
    found = internal_uses(cells)
    assert [line.split(",")[0] for line in found] == [
        f"cell {i}" for i in range(2, 8)
    ], found
    # Without an alias, the module's own name is checked the same way.
    assert internal_uses(["import tf_adapters\ntf_adapters.tasks"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_uses_only_public_names(path):
    nb = nbformat.read(path, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    found = internal_uses(sources)
    assert not found, (
        f"{_name(path)} uses names that `tf_adapters` does not export "
        "(use `import tf_adapters as tfa` and `tfa.<name>`):\n"
        + "\n".join(found)
    )


def _constants(path):
    """The notebook's top-level `NAME = <literal>` assignments."""
    found = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return found


SENTIMENT_NOTEBOOKS = [p for p in NOTEBOOKS if "TEMPLATE" in _constants(p)]


def test_the_sentiment_notebooks_are_found():
    assert [_name(p)[:2] for p in SENTIMENT_NOTEBOOKS] == [
        "03",
        "04",
        "05",
        "07",
        "08",
    ]


@pytest.mark.parametrize("path", SENTIMENT_NOTEBOOKS, ids=_name)
def test_sentiment_notebooks_teach_the_main_jobs_prompt(path):
    # They spell the prompt out to teach it; it must stay the one that
    # `tf-adapters finetune` uses, at the same length.
    from tf_adapters.tasks.classification import ClassificationTask

    constants = _constants(path)
    assert constants["TEMPLATE"] == ClassificationTask.default_template, (
        f"{_name(path)}: TEMPLATE differs from the classification task's "
        "default prompt; update the notebook and run it again"
    )
    assert (
        constants["SEQUENCE_LENGTH"]
        == ClassificationTask.default_sequence_length
    ), f"{_name(path)}: SEQUENCE_LENGTH differs from the task's default"


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_committed_full_run_took_at_most_five_minutes(path):
    # The committed outputs keep each cell's execution times (nbclient's
    # `metadata.execution`): from the first cell's start to the last
    # cell's end is the notebook's full-mode run on a 2-core machine.
    times = [
        c.metadata.get("execution", {})
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code"
    ]
    start = times[0].get("iopub.execute_input")
    end = times[-1].get("shell.execute_reply")
    assert start and end, f"{_name(path)}: no execution times recorded"
    start, end = map(datetime.datetime.fromisoformat, (start, end))
    took = (end - start).total_seconds()
    assert took <= 300, (
        f"{_name(path)} took {took:.0f} s in full mode; "
        "each notebook must run in 5 minutes: use fewer steps or examples"
    )


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
