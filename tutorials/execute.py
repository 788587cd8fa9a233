"""Executes the tutorial notebooks and saves them with their outputs.

    python tutorials/execute.py                  # all nine, full mode, in place
    python tutorials/execute.py tutorials/05_*.ipynb   # some of them
    python tutorials/execute.py --quick          # CI's quick mode, not saved

Full mode is how the committed outputs were produced: each notebook runs
top to bottom in a fresh `python3` kernel, in a temporary working
directory, on the embedded default model, and is written back in place
with its outputs. The time each one took is printed. What a notebook
writes (adapters, SavedModels, presets: up to a few GB) goes under a
temporary `TMPDIR` that is deleted when the notebook is done.

Quick mode (`--quick`) is what CI runs (tests/tutorials/test_notebooks.py):
`TF_ADAPTERS_QUICK=1` makes the notebooks use fewer steps and examples, and
`TF_ADAPTERS_TUTORIAL_MODEL` points them at a 1-layer cut of the same
model (`make_quick_model`): the same code path at a fraction of the cost,
with outputs that mean nothing. Quick runs are never saved.
"""

import argparse
import contextlib
import glob
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL = "python3"
# Notebooks print TensorFlow's C++ start-up lines (oneDNN, CUDA) on the
# process's stderr before any log level applies; keep them out of the saved
# outputs (Python's own output and warnings are still captured).
KERNEL_ARGS = ["--IPKernelApp.capture_fd_output=False"]
CELL_TIMEOUT = 600
# What quick mode sets: fewer steps and examples, and a smaller base.
QUICK_ENV = ("TF_ADAPTERS_QUICK", "TF_ADAPTERS_TUTORIAL_MODEL")


def notebooks():
    """The tutorial notebooks, in order."""
    return sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.ipynb")))


def make_quick_model(directory, num_layers=1):
    """Saves the first `num_layers` decoder layers of the embedded default
    model (same tokenizer, embeddings and final norm) as a keras-hub preset
    in `directory`, for quick mode. Returns `directory`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tf_adapters import load_base

    full = load_base()
    config = full.backbone.get_config()
    config["num_layers"] = num_layers
    backbone = type(full.backbone).from_config(config)
    source = {v.path: v for v in full.backbone.weights}
    for var in backbone.weights:
        var.assign(source[var.path])
    small = type(full)(backbone=backbone, preprocessor=full.preprocessor)
    small.save_to_preset(directory)
    return directory


def execute(path, save=True, cwd=None, timeout=CELL_TIMEOUT):
    """Runs notebook `path` in a fresh kernel; returns `(notebook, seconds)`.

    The kernel inherits `os.environ` (quick mode or not) and runs in `cwd`
    (default: a new temporary directory). Raises
    `nbclient.exceptions.CellExecutionError` on the first failing cell.
    With `save`, writes the executed notebook back to `path`.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="tutorial_") as scratch:
        client = NotebookClient(
            nb,
            kernel_name=KERNEL,
            timeout=timeout,
            resources={"metadata": {"path": cwd or scratch}},
            extra_arguments=KERNEL_ARGS,
        )
        start = time.perf_counter()
        with scratch_tmpdir(scratch):
            client.execute()
        seconds = time.perf_counter() - start
    if save:
        nbformat.write(nb, path)
    return nb, seconds


@contextlib.contextmanager
def scratch_tmpdir(parent):
    """Points `TMPDIR` (what the kernel's `tempfile.mkdtemp()` uses) at a
    new folder under `parent`, for the kernels started inside."""
    folder = os.path.join(parent, "tmp")
    os.makedirs(folder, exist_ok=True)
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = folder
    try:
        yield folder
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "notebooks", nargs="*", help="Notebooks to run (default: all)."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI's quick mode on a 1-layer model; nothing is saved.",
    )
    args = parser.parse_args(argv)
    paths = [os.path.abspath(p) for p in args.notebooks] or notebooks()
    for key in QUICK_ENV:
        os.environ.pop(key, None)
    total = time.perf_counter()
    if args.quick:
        start = time.perf_counter()
        model = make_quick_model(tempfile.mkdtemp(prefix="quick_model_"))
        print(f"quick model: {time.perf_counter() - start:.0f} s", flush=True)
        os.environ["TF_ADAPTERS_QUICK"] = "1"
        os.environ["TF_ADAPTERS_TUTORIAL_MODEL"] = model
    for path in paths:
        _, seconds = execute(path, save=not args.quick)
        print(f"{os.path.basename(path)}: {seconds:.0f} s", flush=True)
    print(f"total: {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
