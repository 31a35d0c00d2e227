"""`coreml`: the exported SavedModel converted to a Core ML package whose interface matches the signature.

Running a Core ML model needs macOS, so these tests check what Linux can: the package's inputs and outputs, and
the clear refusals (no SavedModel; an input type Core ML lacks).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from .conftest import REPO, project_env, run_project

UINT8_SAVEDMODEL = """
import sys, tensorflow as tf

class Frames(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec((None, 4, 4, 3), tf.uint8, name="frame")])
    def serve(self, frame):
        return {"mean": tf.reduce_mean(tf.cast(frame, tf.float32), axis=[1, 2, 3])}

module = Frames()
tf.saved_model.save(module, sys.argv[1], signatures={"serving_default": module.serve})
"""


def test_the_mnist_savedmodel_converts_with_the_signatures_names(mnist_export, tmp_path):
    from common.export.coreml import describe

    shutil.copytree(mnist_export / "serving", tmp_path / "serving")
    result = run_project("mnist", "coreml", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    package = tmp_path / "export" / "mnist.mlpackage"
    assert describe(package) == {"inputs": ["image"], "outputs": ["digit", "probabilities"]}
    assert sum(f.stat().st_size for f in package.rglob("*") if f.is_file()) > 100_000  # the weights are in it
    assert "image float32 (None, 28, 28, 1)" in result.stdout and "needs macOS" in result.stdout


def test_without_an_export_it_names_the_command_to_run(tmp_path):
    result = run_project("mnist", "coreml", "--output-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no SavedModel version in" in result.stderr and "make project=mnist export" in result.stderr


def test_an_input_core_ml_has_no_type_for_is_refused_by_name(tmp_path):
    version = tmp_path / "serving" / "mnist" / "1"
    made = subprocess.run(
        [sys.executable, "-c", UINT8_SAVEDMODEL, str(version)], cwd=REPO, env=project_env(), capture_output=True
    )
    assert made.returncode == 0, made.stderr[-2000:]
    result = run_project("mnist", "coreml", "--output-dir", str(tmp_path))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'input "frame" is uint8; Core ML takes float32, float16 or int32 only' in result.stderr
    assert not (tmp_path / "export" / "mnist.mlpackage").exists()
