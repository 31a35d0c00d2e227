"""Closed-loop evaluation: the CNN, the expert and a random policy drive the same held-out tracks.

Open-loop error (how far the CNN's steering is from the expert's on the expert's own
frames) says little about driving: small errors compound once the CNN's actions
decide what it sees next. So the model is judged by driving: reward, tiles visited,
laps completed and off-track events on `evaluate.tracks` seeds never used in training.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from common import plots
from common.data.splits import DataSplits, dataset_to_numpy
from common.paths import ArtifactPaths

from . import data as driving_data
from . import report_plots
from .config import DrivingConfig
from .episodes import Episode, drive
from .expert import ExpertDriver
from .policies import cnn_policy, random_policy
from .simulator import Simulator

DRIVERS = ("cnn", "expert", "random")


def drive_held_out(cfg: DrivingConfig, model: keras.Model) -> dict[str, list[Episode]]:
    """Each driver's episodes on the held-out seeds (the expert's come from the cache when recorded before).

    Only the CNN's first drive keeps its frames (for the GIF and the browser replay).
    """
    seeds = driving_data.eval_seeds(cfg)
    steps = cfg.evaluate.max_steps
    expert_drives = driving_data.expert_drives(cfg, seeds, steps)
    drives: dict[str, list[Episode]] = {"cnn": [], "expert": expert_drives, "random": []}
    sim, expert = Simulator(steps), ExpertDriver(cfg.expert)
    jobs = [(name, k, seed) for name in ("cnn", "random") for k, seed in enumerate(seeds)]
    progress = tqdm(jobs, desc="Closed-loop drives on held-out tracks", unit="drive")
    for name, k, seed in progress:
        policy = cnn_policy(model) if name == "cnn" else random_policy(seed)
        episode = drive(sim, expert, seed, policy, keep_frames=name == "cnn" and k == 0)
        drives[name].append(episode)
        progress.set_postfix(driver=name, seed=seed, reward=f"{episode.reward:.0f}")
    sim.close()
    return drives


def summarize(drives: dict[str, list[Episode]]) -> dict:
    """Per driver: mean and min reward, mean tiles visited, laps, off-track events; per track: each summary."""
    metrics: dict = {}
    for name, episodes in drives.items():
        rewards = [e.reward for e in episodes]
        metrics[f"{name}_mean_reward"] = round(float(np.mean(rewards)), 1)
        metrics[f"{name}_min_reward"] = round(float(np.min(rewards)), 1)
        metrics[f"{name}_mean_track_progress"] = round(float(np.mean([e.tiles / e.tiles_total for e in episodes])), 3)
        metrics[f"{name}_laps"] = int(sum(e.lap for e in episodes))
        metrics[f"{name}_off_track_events"] = int(sum(e.off_track_events for e in episodes))
    metrics["reward_ratio"] = round(metrics["cnn_mean_reward"] / metrics["expert_mean_reward"], 3)
    metrics["tracks"] = {
        str(e.seed): {name: drives[name][k].summary() for name in drives} for k, e in enumerate(drives["cnn"])
    }
    metrics["tables"] = {  # report.md shows these
        "Held-out tracks": [
            {"track seed": seed, "driver": name, **summary}
            for seed, per_driver in metrics["tracks"].items()
            for name, summary in per_driver.items()
        ]
    }
    return metrics


def open_loop_errors(model: keras.Model, data: DataSplits) -> dict[str, float]:
    """Mean |CNN - expert| of steering and throttle on the held-out expert drive's frames."""
    frames, steering, throttle = dataset_to_numpy(data.test.map(lambda f, y: (f, y["steering"], y["throttle"])))
    out = model.predict(frames, batch_size=256, verbose=0)
    return {
        "open_loop_steering_mae": round(float(np.mean(np.abs(out["steering"] - steering))), 4),
        "open_loop_throttle_mae": round(float(np.mean(np.abs(out["throttle"] - throttle))), 4),
    }


def closed_loop_markdown(metrics: dict) -> str:
    """A table of every held-out track: reward / tiles / laps / off-track events per driver."""
    lines = [
        "# driving: closed-loop drives on held-out tracks",
        "",
        "| track seed | " + " | ".join(f"{d} reward | {d} tiles | {d} laps | {d} off-track" for d in DRIVERS) + " |",
        "|---" * (1 + 4 * len(DRIVERS)) + "|",
    ]
    for seed, per_driver in metrics["tracks"].items():
        cells = [
            f"{s['reward']:.0f} | {s['tiles_visited']} ({s['track_progress']:.0%}) | {s['laps']} | "
            f"{s['off_track_events']}"
            for s in (per_driver[d] for d in DRIVERS)
        ]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    lines += ["", "| driver | mean reward | min reward |", "|---|---|---|"]
    lines += [f"| {d} | {metrics[f'{d}_mean_reward']:.1f} | {metrics[f'{d}_min_reward']:.1f} |" for d in DRIVERS]
    lines.append(f"\nCNN / expert mean reward: {metrics['reward_ratio']:.3f}")
    return "\n".join(lines) + "\n"


def evaluate(cfg: DrivingConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths) -> tuple[dict, list[Path]]:
    """Closed-loop metrics and open-loop errors; plots, drive.gif and closed_loop.md."""
    drives = drive_held_out(cfg, model)
    metrics = {**summarize(drives), **open_loop_errors(model, data)}
    first = drives["cnn"][0]
    plot_paths = [
        report_plots.steering_over_time(first, paths.plots / "steering_over_time.png"),
        report_plots.driven_paths(drives, paths.plots / "driven_paths.png"),
    ]
    if paths.history_csv.exists():
        plot_paths.append(plots.training_curves(paths.history_csv, paths.plots / "training_curves.png"))
    if paths.train_summary.exists():
        rounds = json.loads(paths.train_summary.read_text()).get("rounds", [])
        if any("drive_mean_reward" in r for r in rounds):
            plot_paths.append(
                report_plots.rewards_per_round(
                    [r for r in rounds if "drive_mean_reward" in r], paths.plots / "dagger_rewards.png"
                )
            )
    if cfg.evaluate.gif_frames:
        gif = report_plots.drive_gif(first, paths.root / "drive.gif", cfg.evaluate.gif_frames)
        print(f"GIF of the CNN's drive on track {first.seed}: {gif}")
    (paths.root / "closed_loop.md").write_text(closed_loop_markdown(metrics))
    print(closed_loop_markdown(metrics))
    return metrics, plot_paths
