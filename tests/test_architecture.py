"""The layers, as a test: each folder of harness/ imports only the folders below it, and
no module imports itself back through others (function-level imports included).

    model  <  host  <  provision, report  <  scenarios, catalogue  <  jobs  <  request  <  cli

This is how to see the layers: a new import that breaks them fails here, naming it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parent.parent / "harness"
RANK = {
    "model": 0,  # pure: verdicts, search, plan, confidence, table, targets, errors
    "host": 1,  # effects on this machine: git, processes, proxy, fs, load generators
    "provision": 2,  # index, wheels, interpreters, environments, requirement sets
    "report": 2,  # renderers of the table model
    "scenarios": 3,  # the protocol, the registry, the server lifecycle, the rules
    "catalogue": 3,  # scenario files of tracker cases (loaded by path)
    "jobs": 4,  # release table, commit bisection, check
    "request": 5,  # the options, their --help text; argv -> Request
    "cli": 6,  # Request -> outcome -> text and exit status
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t != "harness":
                found.add(t)
    return found


def _layer(module: str) -> str:
    return module.split(".")[1]


MODULES = _modules()
GRAPH = {m: _imports(m, p, set(MODULES)) for m, p in MODULES.items() if m != "harness"}


def test_every_folder_has_a_rank():
    assert {_layer(m) for m in GRAPH} <= set(RANK)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_only_downward(module):
    up = [t for t in GRAPH[module] if RANK[_layer(t)] > RANK[_layer(module)]]
    assert up == [], f"{module} imports from a higher layer: {up}"


def test_no_import_circle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_model_imports_nothing_of_ours_but_the_model():
    assert all(_layer(t) == "model" for m in GRAPH if _layer(m) == "model" for t in GRAPH[m])


#: the size a newcomer reads in one sitting: cohesion decides a module's size, up to this
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 60
#: the option table and its --help text: declarative, one long function by nature
DECLARATIVE = {"harness.request"}


#: modules in harness/ (issue 23): fragments merged, one story per folder
MAX_MODULES = 60


def test_harness_has_at_most_sixty_modules():
    modules = sorted(m for m, p in MODULES.items() if p.name != "__init__.py")
    assert len(modules) <= MAX_MODULES, f"{len(modules)} modules in harness/: {modules}"


def test_no_module_is_longer_than_a_sitting():
    long = {
        m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, f"over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_longer_than_a_screen():
    long = {}
    for module, path in MODULES.items():
        if module in DECLARATIVE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long[f"{module}.{node.name}"] = size
    assert not long, f"over {MAX_FUNCTION_LINES} lines: {long}"
