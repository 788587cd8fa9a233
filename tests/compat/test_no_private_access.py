"""Private Keras / keras-hub / TF attributes are used in `compat/` only.

Scans the package's source: outside `tf_adapters/compat/`, no attribute
whose name starts with one underscore is read or written on anything but
`self`, `cls` or `super()`; `self._x` and methods `_x` are allowed only
where `_x` is not an attribute Keras's own layers and models have; no
`getattr`/`setattr`/`hasattr` with a private name; no `object.__setattr__`
/ `__delattr__`, `__class__` assignment or `__dict__` / `vars()` reads
(they bypass Keras's tracking, swap classes or reach private attributes by
value); no imports from `keras.src` or `keras_hub.src`.
"""

import ast
import os

import keras
import keras_hub
import pytest

import tf_adapters

PACKAGE = os.path.dirname(tf_adapters.__file__)
COMPAT = os.path.join(PACKAGE, "compat")


def _keras_private_names():
    """Private names of Keras / keras-hub layers and models, both class
    attributes and those their instances set."""
    dense = keras.layers.Dense(2)
    dense.build((None, 2))
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=8,
        num_layers=1,
        num_heads=1,
        hidden_dim=2,
        intermediate_dim=4,
        max_sequence_length=4,
    )
    objects = [dense, backbone, keras.optimizers.Adam()]
    objects += list(backbone.transformer_layers)
    names = set()
    for obj in objects:
        names |= set(dir(obj)) | set(vars(obj))
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


KERAS_PRIVATE = _keras_private_names()
# `vars()` of objects that are not Keras's: a module's public namespace and
# argparse's parsed options.
PRIVATE_PACKAGES = (["keras", "src"], ["keras_hub", "src"])
ALLOWED_VARS = {"keras_hub.models", "build_parser().parse_args(argv)"}


def _is_private(name):
    return name.startswith("_") and not name.startswith("__")


def _is_owner(node):
    """`self`, `cls` or `super()`."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
    )


def violations(source, filename):
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute):
            if node.attr in ("__class__", "__dict__") and isinstance(
                node.ctx, ast.Store
            ):
                found.append((line, f"assigns {node.attr}"))
            elif _is_private(node.attr):
                if not _is_owner(node.value):
                    found.append((line, f"private attribute .{node.attr}"))
                elif node.attr in KERAS_PRIVATE:
                    found.append((line, f"Keras's private .{node.attr}"))
            if (
                node.attr in ("__setattr__", "__delattr__")
                and isinstance(node.value, ast.Name)
                and node.value.id == "object"
            ):
                found.append((line, f"object.{node.attr}"))
            elif node.attr == "__dict__" and isinstance(node.ctx, ast.Load):
                found.append((line, "reads __dict__"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name in KERAS_PRIVATE:
                found.append((line, f"overrides Keras's {node.name}"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name.split(".")[:2] in (
                    ["keras", "src"],
                    ["keras_hub", "src"],
                ):
                    found.append((line, f"imports {name}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "vars" and node.args:
                if ast.unparse(node.args[0]) not in ALLOWED_VARS:
                    found.append((line, f"vars({ast.unparse(node.args[0])})"))
            if node.func.id in ("getattr", "setattr", "hasattr", "delattr"):
                args = node.args[1:2]
                if (
                    args
                    and isinstance(args[0], ast.Constant)
                    and isinstance(args[0].value, str)
                    and (
                        _is_private(args[0].value)
                        or args[0].value == "__class__"
                    )
                ):
                    found.append(
                        (line, f"{node.func.id}(..., {args[0].value!r})")
                    )
    return found


def _package_files():
    for root, _, files in os.walk(PACKAGE):
        if root.startswith(COMPAT):
            continue
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def test_no_private_keras_attributes_outside_compat():
    found = []
    for path in _package_files():
        with open(path, encoding="utf-8") as f:
            source = f.read()
        rel = os.path.relpath(path, PACKAGE)
        found += [
            f"{rel}:{line}: {what}" for line, what in violations(source, rel)
        ]
    assert not found, "Use tf_adapters.compat instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("layer._layers", "private attribute ._layers"),
        ("self._tracker.unlock()", "Keras's private ._tracker"),
        ("getattr(x, '_value', x)", "getattr(..., '_value')"),
        ("object.__setattr__(obj, 'a', 1)", "object.__setattr__"),
        ("obj.__class__ = B", "assigns __class__"),
        ("vars(parent)", "vars(parent)"),
        ("layer.__dict__.get('a')", "reads __dict__"),
        ("object.__delattr__(obj, 'a')", "object.__delattr__"),
        ("from keras.src.layers import Dense", "imports keras.src.layers"),
        ("import keras_hub.src.models", "imports keras_hub.src.models"),
        (
            "class M:\n    def _maybe_symbolic_build(self): pass",
            "overrides Keras's _maybe_symbolic_build",
        ),
    ],
)
def test_the_scan_finds_each_kind_of_private_access(source, expected):
    assert [what for _, what in violations(source, "x.py")] == [expected]


def test_the_scan_allows_our_own_private_names():
    source = (
        "class A:\n"
        "    def _helper(self):\n"
        "        return self._count + super()._helper()\n"
    )
    assert violations(source, "x.py") == []
