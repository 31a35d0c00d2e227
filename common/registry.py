"""The one place that finds a project by name: list the projects, load one's config module, project or demo.

A project is a folder `projects/<name>/` with `config.py` and `project.py` (and optionally `demo.py`).
The command line, the server tools, the Gradio app, the benchmarks and the web index all go through here;
nothing else imports `projects.<name>` by a computed name.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import TYPE_CHECKING

from common.paths import REPO_ROOT

if TYPE_CHECKING:
    from common.demo import Demo
    from common.project import Project

PROJECTS_DIR = REPO_ROOT / "projects"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class UnknownProjectError(LookupError):
    """A project name with no folder `projects/<name>/` holding a project.py; the message lists the known ones."""


def names() -> list[str]:
    """Every project, sorted: the folders of projects/ that hold a project.py."""
    return sorted(p.parent.name for p in PROJECTS_DIR.glob("*/project.py") if _NAME.match(p.parent.name))


def _module(name: str, part: str) -> ModuleType:
    if name not in names():
        raise UnknownProjectError(f"unknown project {name!r}; known projects: {', '.join(names())}")
    return importlib.import_module(f"projects.{name}.{part}")


def config_module(name: str) -> ModuleType:
    """`projects/<name>/config.py`: `CONFIG`, `PRESETS`, `DEFAULT_PRESET`, optional `COMMANDS` (no TensorFlow)."""
    return _module(name, "config")


def load(name: str) -> Project:
    """The project's `PROJECT` (imports TensorFlow)."""
    return _module(name, "project").PROJECT


def has_demo(name: str) -> bool:
    """Whether the project has a `demo.py` (Gradio and the client's image files)."""
    return name in names() and (PROJECTS_DIR / name / "demo.py").is_file()


def demo(name: str) -> Demo:
    """The project's `DEMO` (a `common.demo.Demo`), or UnknownProjectError naming the file to add."""
    if not has_demo(name):
        _module(name, "config")  # an unknown name fails listing the known ones
        raise UnknownProjectError(f"project {name!r} has no demo; add projects/{name}/demo.py (see mnist's)")
    return _module(name, "demo").DEMO
