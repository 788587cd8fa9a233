"""The package's import structure (issue 15): no cycles, no private names
imported across modules, and lower layers never import higher ones."""

import ast
import os

import tf_adapters

PACKAGE = os.path.dirname(tf_adapters.__file__)

# Lowest first; a module may import only from its own room or lower ones.
LAYERS = [
    ["compat"],
    ["core"],
    ["models"],
    ["methods"],
    ["injection"],
    ["generation"],
    ["interop"],
    ["checkpoint", "saving", "summary"],
    ["data"],
    ["evaluation"],
    ["training"],
    ["tasks"],
    ["export"],
    ["serving"],
    ["pipeline"],
    ["<package>"],
    ["cli"],
]
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def _modules():
    """`{module name: ast tree}` for every module of the package."""
    found = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3]
            module = rel.replace(os.sep, ".").removesuffix(".__init__")
            with open(path, encoding="utf-8") as f:
                found[module] = ast.parse(f.read(), path)
    return found


def _imports(tree):
    """`(module, [names])` of every tf_adapters import, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "tf_adapters":
                yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tf_adapters":
                    yield alias.name, []


def _room(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<package>"


MODULES = _modules()


def _targets(tree):
    """Modules an import runs: `from pkg import mod` imports `pkg.mod`."""
    found = set()
    for target, names in _imports(tree):
        subs = {f"{target}.{n}" for n in names} & set(MODULES)
        found |= subs or ({target} & set(MODULES))
    return found


GRAPH = {module: _targets(tree) for module, tree in MODULES.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or `None`."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_private_names_imported_across_modules():
    found = [
        f"{module} imports {name} from {target}"
        for module, tree in MODULES.items()
        for target, names in _imports(tree)
        for name in names
        if name.startswith("_")
    ]
    assert not found, "\n".join(found)


def test_lower_layers_never_import_higher_ones():
    found = []
    for module, targets in GRAPH.items():
        for target in targets:
            if RANK[_room(target)] > RANK[_room(module)]:
                found.append(f"{module} imports {target}")
    assert not found, "\n".join(sorted(found))


def test_every_room_has_a_layer():
    assert {_room(m) for m in MODULES} <= set(RANK)


def test_the_cli_depends_on_the_pipeline_only():
    # And on the package itself, whose import registers the Keras classes:
    # the command defers it until the arguments are parsed.
    found = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _room(module) == "cli"
        for target in targets
        if _room(target) not in ("cli", "pipeline", "<package>")
    ]
    assert not found, "\n".join(found)
