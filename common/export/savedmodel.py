"""The SavedModel and the serving repository it goes into: `<root>/<model>/<version>/`, TF Serving's layout.

A version is written to a hidden staging folder inside `<root>/<model>/` and
renamed to the next free integer only when complete: a server polling the
folder (TF Serving, or ours) sees a whole version or none, because it only loads
folders whose names are integers. `<root>/models.config` lists every model, as a
`ModelServerConfig` text proto whose base paths are where the tensorflow/serving
container mounts the repository (`/models/<model>`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

SIGNATURE = "serving_default"
CONTAINER_ROOT = "/models"  # where serving/docker-compose.yml mounts the repository
STAGING_PREFIX = ".staging-"

Writer = Callable[[keras.Model, Path], None]


def output_names(serving: keras.Model) -> list[str]:
    """The serving model's output names: its dict keys, or the name of its single output."""
    if isinstance(serving.output, dict):
        return list(serving.output)
    return [serving.output_names[0]]


def write_savedmodel(
    serving: keras.Model, directory: Path, extra_signatures: dict[str, Callable] | None = None
) -> None:
    """Write `serving` as a SavedModel with the signature `serving_default`, plus `extra_signatures`.

    Inputs are named after the model's `keras.Input`s (batch dimension left free),
    outputs after its output dict keys. Written with `keras.export.ExportArchive`,
    which tracks the variables (a bare `tf.Module` around a Keras 3 model does not).
    `extra_signatures` are tf.functions with an `input_signature`, by signature name, calling `serving`.
    """
    names = [t.name for t in serving.inputs]
    specs = [tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name) for t in serving.inputs]
    keys = output_names(serving)

    def serve(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = serving(dict(zip(names, tensors, strict=True)) if len(tensors) > 1 else tensors[0], training=False)
        return outputs if isinstance(outputs, dict) else {keys[0]: outputs}

    archive = keras.export.ExportArchive()
    archive.track(serving)
    archive.add_endpoint(SIGNATURE, serve, input_signature=specs)
    for name, function in (extra_signatures or {}).items():
        archive.add_endpoint(name, function)
    archive.write_out(str(directory), verbose=False)


def stage(serving: keras.Model, repository: Path, name: str, writer: Writer | None = None) -> Path:
    """Write `serving` into a new hidden staging folder of `repository/name`; nothing is left if writing fails.

    `writer` defaults to `write_savedmodel`.
    """
    model_dir = repository / name
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(model_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=model_dir))
    staging.chmod(0o755)  # mkdtemp makes it private; a server running as another user must read the version
    try:
        (writer or write_savedmodel)(serving, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def remove_abandoned_staging(model_dir: Path) -> list[Path]:
    """Delete staging folders left by exports whose process is gone (killed mid-write); returns them.

    A staging folder is named `.staging-<pid>-<random>`; one whose process still runs is another export's.
    """
    removed = []
    for folder in model_dir.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name.removeprefix(STAGING_PREFIX).split("-")[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def versions(model_dir: Path) -> list[int]:
    """The published versions of a model, ascending (staging and other folders ignored)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def publish(staging: Path) -> int:
    """Rename a staged SavedModel to the next free version of its model folder; returns the version."""
    model_dir = staging.parent
    while True:
        version = max(versions(model_dir), default=0) + 1
        try:
            os.rename(staging, model_dir / str(version))
            return version
        except OSError:
            if not (model_dir / str(version)).exists():
                raise
            # Another export published this number first: take the next one.


def update_models_config(repository: Path, name: str) -> Path:
    """Add `name` to `repository/models.config` (created if missing); other models are kept as they are."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = repository / "models.config"
    config = model_server_config_pb2.ModelServerConfig()
    if path.exists():
        try:
            text_format.Parse(path.read_text(), config)
        except text_format.ParseError as err:
            raise ValueError(f"{path} is not a valid ModelServerConfig text proto ({err}); fix or delete it") from None
    if all(model.name != name for model in config.model_config_list.config):
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = f"{CONTAINER_ROOT}/{name}"
        entry.model_platform = "tensorflow"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text_format.MessageToString(config))
    os.replace(tmp, path)
    return path


def load(directory: Path) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The `serving_default` signature of a SavedModel, as numpy in, numpy out."""
    loaded = tf.saved_model.load(str(directory))  # kept referenced: the signature reads its variables

    def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = loaded.signatures[SIGNATURE](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    return predict
