"""Models are loaded in Keras's safe mode, and nothing is unpickled but through a restricted unpickler: a `.keras`
file with code in it is refused."""

from __future__ import annotations

import ast

from .conftest import REPO, run_project

SOURCES = ("common", "projects", "serving", "benchmarks")
SAFE = {"safe_mode": True, "allow_pickle": False}  # the only values these keywords may be given
# The sources that must read a pickle, and why: each unpickles through a `pickle.Unpickler` subclass whose
# `find_class` admits named types only, and calls no other unpickling function.
RESTRICTED_UNPICKLERS = {
    "projects/classifier/torch_checkpoint.py": "EfficientNet-Lite0's ImageNet weights are a legacy PyTorch pickle",
}
UNRESTRICTED = ("load", "loads", "Unpickler")  # pickle's functions that would run any callable the file names


def _is_constant(node: ast.expr, value: bool) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def test_a_model_file_with_a_lambda_layer_is_refused_with_the_reason(tmp_path):
    import keras

    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.save(tmp_path / "model.keras")
    result = run_project("mnist", "evaluate", "--preset", "smoke", "--output-dir", str(tmp_path))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "refused to load" in result.stderr and "Lambda" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "report.json").exists()


def _restricted_unpickler_offences(tree: ast.Module, where: str) -> list[str]:
    """A restricted unpickler's file: a `pickle.Unpickler` subclass defining `find_class`, and no call of
    `pickle.load`, `pickle.loads` or `pickle.Unpickler` itself."""
    offences = []
    subclasses = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(ast.unparse(base) == "pickle.Unpickler" for base in node.bases)
    ]
    if not any(isinstance(item, ast.FunctionDef) and item.name == "find_class" for c in subclasses for item in c.body):
        offences.append(f"{where}: no pickle.Unpickler subclass with its own find_class")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in {f"pickle.{name}" for name in UNRESTRICTED}:
            offences.append(f"{where}:{node.lineno} calls {ast.unparse(node.func)}, which admits any callable")
    return offences


def test_no_source_unpickles_or_turns_safe_mode_off():
    offences = []
    for package in SOURCES:
        for path in (REPO / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            where = str(path.relative_to(REPO))
            if where in RESTRICTED_UNPICKLERS:
                offences += _restricted_unpickler_offences(tree, where)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom) and where not in RESTRICTED_UNPICKLERS:
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    if any(n.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib") for n in names):
                        offences.append(f"{path.relative_to(REPO)}:{node.lineno} imports a pickle module")
                if isinstance(node, ast.keyword) and node.arg in SAFE and not _is_constant(node.value, SAFE[node.arg]):
                    offences.append(f"{path.relative_to(REPO)}:{node.lineno} {node.arg}={ast.unparse(node.value)}")
                if isinstance(node, ast.Attribute) and node.attr == "enable_unsafe_deserialization":
                    offences.append(f"{path.relative_to(REPO)}:{node.lineno} enables unsafe deserialization")
    assert not offences, offences
