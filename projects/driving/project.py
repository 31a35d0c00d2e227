"""The self-driving car's recipe: expert drives as data, PilotNet, DAgger training, closed-loop evaluation, serving."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
from PIL import Image

from common.config import ConfigError, to_dict
from common.data.splits import DataSplits
from common.paths import ArtifactPaths
from common.project import Project
from common.training import fit, make_optimizer, steps_per_epoch, strategy_scope

from . import closed_loop, dagger
from . import data as driving_data
from .augmentation import augment_pairs
from .commands import run_command
from .config import DrivingConfig
from .demo import DEMO
from .model import build_model
from .serving_model import build_serving_model
from .simulator import SimulatorMissingError

SAMPLE_FRAMES = 8  # frames in samples.json (the browser test compares them with Keras)
REPLAY_STRIDE = 3  # the browser replay shows every 3rd frame of the held-out drive
REPLAY_START = 60  # after the first second's zoom-in animation


class DrivingProject(Project):
    name = "driving"
    monitor = ("val_loss", "min")
    metric_name = "steering_mae"  # parity: mean |steering - the expert's| on the held-out drive's frames
    metric_is_share = False  # an error: lower is better
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 0.02,
        "tflite_dynamic": 0.2,
        "tflite_int8": 0.3,
        "tfjs_uint8": 0.15,
    }

    def load_data(self, cfg: DrivingConfig) -> DataSplits:
        """The expert's drives (recorded once, then cached); exits with the fix if box2d is missing."""
        try:
            return driving_data.splits(cfg)
        except SimulatorMissingError as err:
            sys.exit(f"error: {err}")
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def build_model(self, cfg: DrivingConfig) -> keras.Model:
        """PilotNet (model.py): `frame` (batch, 96, 96, 3) uint8 -> `steering`, `throttle` (batch, 1) in [-1, 1]."""
        return build_model(cfg.model)

    def loss(self, cfg: DrivingConfig) -> dict[str, str]:
        """The mean squared error of each output against the expert's action."""
        return {"steering": "mse", "throttle": "mse"}

    def metrics(self, cfg: DrivingConfig) -> dict[str, list[str]]:
        """The mean absolute error of each output, easier to read than the squared one."""
        return {"steering": ["mae"], "throttle": ["mae"]}

    def train(self, cfg: DrivingConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """Behaviour cloning on the expert's drives, then DAgger rounds (dagger.py), each one `fit_round`."""
        return dagger.train(cfg, data, paths, self.fit_round)

    def fit_round(
        self, cfg: DrivingConfig, data: DataSplits, paths: ArtifactPaths, previous: keras.Model | None
    ) -> keras.Model:
        """One round: PilotNet, warm-started from the round before (if any), fitted on every frame so far."""
        with strategy_scope(cfg.train):
            model = self.build_model(cfg)
            if previous is not None:
                model.set_weights(previous.get_weights())
            model.compile(
                optimizer=make_optimizer(cfg.train, steps_per_epoch(data, cfg.train.batch_size)),
                loss=self.loss(cfg),
                metrics=self.metrics(cfg),
            )
        return fit(
            model,
            data,
            cfg.train,
            paths,
            monitor=self.monitor,
            augment_pairs=self.augment_pairs(cfg),
            summary={"project": self.name, "config": to_dict(cfg)},
        )

    def augment_pairs(self, cfg: DrivingConfig) -> Callable | None:
        """Flips and sideways shifts change the steering with the frame (augmentation.py), when `data.augment`."""
        return augment_pairs(cfg.data) if cfg.data.augment else None

    def search_space(self, cfg: DrivingConfig) -> dict:
        """Network width and head, dropout, learning rate and batch size: what moves behaviour cloning's loss.

        Every key has a list of values or a step, so `tune.algorithm=grid` can walk it (36 x 5 = 180 combinations).
        """
        return {
            "model.filters": [[16, 24, 32, 48, 48], [24, 36, 48, 64, 64], [32, 48, 64, 96, 96]],
            "model.dense": [[100, 50, 10], [64, 16]],
            "model.dropout": {"min": 0.0, "max": 0.4, "step": 0.1},
            "train.learning_rate": [3e-4, 1e-3, 3e-3],
            "train.batch_size": [32, 64],
        }

    def evaluate(self, cfg: DrivingConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """The CNN, the expert and a random policy on the held-out tracks (see closed_loop.py)."""
        return closed_loop.evaluate(cfg, model, data, paths)

    def serving_model(self, model: keras.Model, cfg: DrivingConfig) -> keras.Model:
        """`frame` (batch, 96, 96, 3) uint8 -> `steering` (batch,) and `throttle` (batch, 1) float32."""
        return build_serving_model(model)

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The steering, to two decimals: formats "agree" on a frame when they steer the same to 0.01."""
        return np.round(outputs["steering"].reshape(-1), 2)

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """Mean |steering - the expert's steering|."""
        return float(np.mean(np.abs(answers - targets)))

    def model_answer(self, outputs: dict[str, np.ndarray], cfg: DrivingConfig) -> np.ndarray:
        """The steering (batch,) from PilotNet's own outputs, scored by `answer_metric` in `optimize`."""
        return outputs["steering"].reshape(-1)

    def keras2_layers(self) -> dict[str, type]:
        """`TelemetryMask` in tf_keras (keras2_layers.py)."""
        from .keras2_layers import KERAS2_LAYERS

        return KERAS2_LAYERS

    def prunable_layers(self, model: keras.Model) -> list[str]:
        """Every kernel but the first convolution's (on raw pixels) and the two one-unit outputs'."""
        kept = ("conv1", "steering", "throttle")
        return [layer.name for layer in model.layers if hasattr(layer, "kernel") and layer.name not in kept]

    def quantized_layers(self, model: keras.Model) -> list[str]:
        """The dense head (most of the weights); the convolutions are left to TF Lite's int8 calibration."""
        return [layer.name for layer in model.layers if type(layer).__name__ == "Dense"]

    def export_examples(self, cfg: DrivingConfig, data: DataSplits) -> tuple[np.ndarray, np.ndarray]:
        """The held-out drive's frames (n, 96, 96, 3) uint8 and the expert's steering (n,)."""
        return driving_data.frames_and_steering(data.test)

    def representative_inputs(self, cfg: DrivingConfig, data: DataSplits) -> np.ndarray:
        """200 training frames spread over the expert's drives, (200, 96, 96, 3) uint8, to calibrate int8."""
        frames, _ = driving_data.frames_and_steering(data.train)
        return frames[np.linspace(0, len(frames) - 1, 200).astype(int)]

    def sample_inputs(self, cfg: DrivingConfig) -> np.ndarray:
        """8 frames of the browser replay, (8, 96, 96, 3) uint8."""
        frames, _ = replay(cfg)
        return frames[np.linspace(0, len(frames) - 1, SAMPLE_FRAMES).astype(int)]

    def demo_extras(self, model: keras.Model, cfg: DrivingConfig) -> dict[str, Any]:
        """The browser replay: its frames as one PNG sprite (a column of frames), the expert's and Keras's steering."""
        frames, expert = replay(cfg)
        buffer = io.BytesIO()
        Image.fromarray(np.concatenate(frames, axis=0)).save(buffer, format="PNG", optimize=True)
        keras_steering = self.serving_model(model, cfg).predict(frames, verbose=0)["steering"]
        return {
            "replay": {
                "sprite": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
                "frames": len(frames),
                "frame_size": list(frames.shape[1:3]),
                "seconds_per_frame": REPLAY_STRIDE / 50,
                "expert_steering": [round(float(v), 4) for v in expert],
                "keras_steering": [round(float(v), 5) for v in keras_steering],
            }
        }

    def predict(self, cfg: DrivingConfig, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print `<file>: steering +0.21 (right), throttle +0.80 (gas)` per camera frame; returns how many failed."""
        serving = self.serving_model(model, cfg)
        failed = 0
        for name in inputs:
            try:
                request = DEMO.image_inputs(Path(name))  # {"frame": (1, 96, 96, 3) uint8}
            except (ValueError, OSError) as err:
                print(f"error: {err}")
                failed += 1
                continue
            print(f"{name}: {DEMO.answer(request, serving.predict(request['frame'], verbose=0))}")
        return failed

    def run_command(self, command: str, cfg: DrivingConfig, paths: ArtifactPaths, args: Any) -> None:
        """`collect` and `drive` (commands.py)."""
        run_command(command, cfg, paths, args)


def replay(cfg: DrivingConfig) -> tuple[np.ndarray, np.ndarray]:
    """`evaluate.replay_frames` frames of the expert's held-out drive, (n, 96, 96, 3) uint8, and its steering (n,)."""
    episode = driving_data.test_drive(cfg)
    picks = np.arange(REPLAY_START, len(episode.frames), REPLAY_STRIDE)[: cfg.evaluate.replay_frames]
    return episode.frames[picks], episode.expert[picks, 0]


PROJECT = DrivingProject()
