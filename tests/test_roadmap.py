"""docs/roadmap.md maps each roadmap item to what runs it and the test that runs it: every name it gives exists."""

from __future__ import annotations

import ast
import re

from .conftest import REPO

ROADMAP = REPO / "docs" / "roadmap.md"
TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
PATH = re.compile(r"`((?:lessons|projects|common|serving|benchmarks)/[\w./-]*\w)`")


def _test_names(path: str) -> set[str]:
    tree = ast.parse((REPO / path).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_test_named_in_the_roadmap_table_exists():
    text = ROADMAP.read_text()
    named = TEST.findall(text)
    assert len(named) > 60, "the table names too few tests"
    missing = [f"{path}::{name}" for path, name in named if name not in _test_names(path)]
    assert not missing, missing


def test_every_file_named_in_the_roadmap_table_exists():
    text = TEST.sub("", ROADMAP.read_text())
    paths = set(PATH.findall(text)) - {"projects/<name>"}
    assert len(paths) > 20
    missing = sorted(p for p in paths if "<" not in p and not (REPO / p).exists())
    assert not missing, missing


def test_every_lesson_is_in_the_table_and_the_readme_links_it():
    text = ROADMAP.read_text()
    lessons = sorted(p.name for p in (REPO / "lessons").glob("[0-9][0-9]_*.ipynb"))
    assert [name for name in lessons if f"lessons/{name}" not in text] == []
    assert "docs/roadmap.md" in (REPO / "README.md").read_text()
