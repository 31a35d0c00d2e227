"""Models are loaded in Keras's safe mode, and nothing is unpickled: a `.keras` file with code in it is refused."""

from __future__ import annotations

import ast

from .conftest import REPO, run_project

SOURCES = ("common", "projects", "serving", "benchmarks")
SAFE = {"safe_mode": True, "allow_pickle": False}  # the only values these keywords may be given


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


def test_no_source_unpickles_or_turns_safe_mode_off():
    offences = []
    for package in SOURCES:
        for path in (REPO / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    if any(n.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib") for n in names):
                        offences.append(f"{path.relative_to(REPO)}:{node.lineno} imports a pickle module")
                if isinstance(node, ast.keyword) and node.arg in SAFE and not _is_constant(node.value, SAFE[node.arg]):
                    offences.append(f"{path.relative_to(REPO)}:{node.lineno} {node.arg}={ast.unparse(node.value)}")
                if isinstance(node, ast.Attribute) and node.attr == "enable_unsafe_deserialization":
                    offences.append(f"{path.relative_to(REPO)}:{node.lineno} enables unsafe deserialization")
    assert not offences, offences
