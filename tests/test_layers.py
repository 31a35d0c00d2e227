"""The layers point one way: common <- the libraries <- the programs; no circles, no project importing another.

Layers, bottom up (docs/architecture.md):
  common/ foundation (config, paths, runtime, data/, project contract, demo contract, registry)
  common/ libraries (training, evaluation, plots, export/, tuning, optimize, keras2_bridge, web_demo)
  projects/<name>/ (fill the contract; import common only)
  programs: common/cli.py, serving/, benchmarks/
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "projects", "serving", "benchmarks")
PROJECTS = sorted(p.parent.name for p in (REPO / "projects").glob("*/project.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every Python module of the tree's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "node_modules" not in path.parts:
                found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The tree's modules that `name` imports anywhere in its file (lazy imports inside functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_common_imports_neither_serving_nor_projects(graph):
    wrong = {
        m: sorted(i for i in deps if i.startswith(("serving", "projects", "benchmarks")))
        for m, deps in graph.items()
        if m.startswith("common")
    }
    assert not {m: d for m, d in wrong.items() if d}


def test_projects_import_only_common_and_themselves(graph):
    for module, deps in graph.items():
        if not module.startswith("projects."):
            continue
        own = ".".join(module.split(".")[:2])
        foreign = sorted(d for d in deps if not d.startswith(("common", own)) and d != "projects")
        assert not foreign, f"{module} imports {foreign}"


def test_no_import_circle(graph):
    """Depth-first search over the import graph; any back edge is a circle, reported with its path."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                circle = [*path[path.index(dep) :], dep]
                pytest.fail("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_only_the_registry_finds_projects_by_name():
    offenders = []
    for name, path in modules().items():
        text = path.read_text()
        if name != "common.registry" and ("import_module(" in text or "__import__(" in text):
            offenders.append(name)
    assert not offenders


# Imports numpy, TensorFlow and Keras once (5 s), then forks a child per module that imports it and nothing else
# of this repository: a fresh interpreter per module without paying TensorFlow's import 37 times (159 s before).
IMPORT_EACH_ALONE = """
import importlib, os, sys, traceback
import numpy, tensorflow, keras
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    print(name, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


def test_every_common_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(n for n in modules() if n.startswith("common"))
    random.Random().shuffle(names)  # a new order each run: no module may rely on another being imported first
    command = [sys.executable, "-c", IMPORT_EACH_ALONE, *names]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    codes = dict(line.rsplit(" ", 1) for line in done.stdout.splitlines())
    assert done.returncode == 0 and list(codes) == names, done.stderr[-3000:]
    failed = [name for name, code in codes.items() if code != "0"]
    assert not failed, f"these modules fail to import alone: {failed}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("project", PROJECTS)
def test_the_recipe_is_named_in_the_projects_own_folder(project):
    """The project's class states its monitored metric and loss; the base class has no such defaults."""
    folder = REPO / "projects" / project
    tree = ast.parse((folder / "project.py").read_text())
    (spec,) = [
        n
        for n in tree.body
        if isinstance(n, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == "Project" for b in n.bases)
    ]
    assigned = {t.id for n in spec.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    methods = {n.name for n in spec.body if isinstance(n, ast.FunctionDef)}
    assert {"monitor", "metric_name"} <= assigned
    assert {"train", "final_answer", "answer_metric"} <= methods
    assert "loss" in methods or (folder / "loss.py").is_file()  # compile's loss, or the own loop's losses

    base = ast.parse((REPO / "common" / "project.py").read_text())
    (contract,) = [n for n in base.body if isinstance(n, ast.ClassDef) and n.name == "Project"]
    defaults = {t.target.id for t in contract.body if isinstance(t, ast.AnnAssign) and t.value is not None}
    assert not defaults & {"monitor", "metric_name", "loss", "metrics"}
    for method in (n for n in contract.body if isinstance(n, ast.FunctionDef)):
        if method.name in ("loss", "metrics", "final_answer", "answer_metric", "train"):
            assert isinstance(method.body[-1], ast.Raise), f"Project.{method.name} has a default"
