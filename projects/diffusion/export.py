"""The diffusion model's export plan: a sampling SavedModel for serving, the denoiser alone for every other format.

`common.export.export_project` carries it out, as for every project:
- SavedModel (serving repository, `<serving_root>/diffusion/<version>/`): seed [, label, guidance] and steps in,
  uint8 images out, the DDIM loop in the graph (serving_model.py).
- TF Lite float32, TF.js and ONNX: the denoiser (noisy (batch, size, size, 3) float32, timestep (batch,) int32
  [, label (batch,) int32] -> noise), `export/tflite/denoiser.tflite`, `export/tfjs/model.json`,
  `export/onnx/denoiser.onnx`; the client runs DDIM around it (the browser page does, from samples.json's schedule).
- Parity (`parity.json`, `parity.md`): `PARITY_SEEDS` images sampled with `PARITY_STEPS` DDIM steps by Keras, by
  the SavedModel's own loop, and by the same Python loop (sampling.py) around each format's denoiser; a format
  passes when its pixels are within `DiffusionProject.float_tolerance` grey levels of Keras's.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.data.splits import DataSplits, dataset_to_numpy
from common.export import ExportPlan, Format, Predict

from .config import DiffusionConfig
from .model import image_size_of, num_classes_of
from .sampling import Sampler, class_labels, generate, noise_from_seeds
from .serving_model import write_sampler_savedmodel

PARITY_SEEDS = 8
PARITY_STEPS = 4  # each step runs a format once (TF.js: one Node process per step)
SAMPLE_SEED = 7  # the browser demo's fixed denoiser inputs


def parity_inputs(cfg: DiffusionConfig, num_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The parity examples' seeds and classes (cycling through them)."""
    return np.arange(PARITY_SEEDS, dtype=np.int32) + cfg.train.seed + 3, class_labels(PARITY_SEEDS, num_classes)


def export_plan(cfg: DiffusionConfig, model: keras.Model, data: DataSplits, abar: np.ndarray) -> ExportPlan:
    """The sampling SavedModel served; the denoiser converted to TF Lite float32, TF.js and ONNX (see above)."""
    classes, size = num_classes_of(model), image_size_of(model)
    seeds, labels = parity_inputs(cfg, classes)
    guidance, interval = cfg.sampling.guidance, cfg.sampling.guidance_interval
    reference = generate(Sampler.for_keras(model, abar, interval), seeds, labels, PARITY_STEPS, 0.0, guidance)
    targets, _ = dataset_to_numpy(data.test.take(PARITY_SEEDS))

    def run(fmt: Format, loaded: dict[str, Predict]) -> dict[str, np.ndarray]:
        """The Python DDIM loop around the format's denoiser."""
        predict = loaded["denoiser"]

        def denoise(noisy, timestep, label):
            inputs = {"noisy": np.asarray(noisy, np.float32), "timestep": np.asarray(timestep, np.int32)}
            if classes:
                inputs["label"] = np.asarray(label, np.int32)
            return np.asarray(predict(inputs)["noise"], np.float32)

        sampler = Sampler(denoise, abar, classes, size, interval)
        return {"image": generate(sampler, seeds, labels, PARITY_STEPS, 0.0, guidance)}

    def run_savedmodel(path: Path) -> dict[str, np.ndarray]:
        """The served signature itself: its own DDIM loop."""
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        inputs = {"seed": tf.constant(seeds), "steps": tf.fill([PARITY_SEEDS], PARITY_STEPS)}
        if classes:
            inputs.update(label=tf.constant(labels), guidance=tf.fill([PARITY_SEEDS], float(guidance)))
        return {"image": signature(**inputs)["image"].numpy()}

    conditional = {"label": "int32 (None,)"} if classes else {}
    return ExportPlan(
        serving=model,
        writer=lambda served, directory: write_sampler_savedmodel(served, abar, directory, interval),
        reference={"image": reference},
        targets=targets,
        data_source=f"{PARITY_SEEDS} seeds sampled with {PARITY_STEPS} DDIM steps (guidance {guidance:g})",
        signature={
            "savedmodel": {
                "inputs": {"seed": "int32 (None,)", "steps": "int32 (None,)", **conditional}
                | ({"guidance": "float32 (None,)"} if classes else {}),
                "outputs": {"image": f"uint8 (None, {size}, {size}, 3)"},
            },
            "denoiser": {
                "inputs": {"noisy": f"float32 (None, {size}, {size}, 3)", "timestep": "int32 (None,)", **conditional},
                "outputs": {"noise": f"float32 (None, {size}, {size}, 3)"},
            },
        },
        run_savedmodel=run_savedmodel,
        run=run,
        parts={"denoiser": model},
        formats=("tflite_float32", "tfjs", "onnx"),
        summary={"ddim_steps": PARITY_STEPS, "seeds": seeds.tolist()},
    )


def sample_inputs(cfg: DiffusionConfig, num_classes: int) -> dict[str, np.ndarray]:
    """4 noisy images (seeded noise), timesteps spread over the schedule [and classes]: the denoiser's inputs."""
    size, timesteps = cfg.data.image_size, cfg.schedule.timesteps
    inputs = {
        "noisy": noise_from_seeds(np.arange(4) + SAMPLE_SEED, size).numpy(),
        "timestep": np.linspace(0, timesteps - 1, 4).astype(np.int32),
    }
    if num_classes:
        inputs["label"] = class_labels(4, num_classes)
    return inputs
