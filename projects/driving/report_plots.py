"""The driving report's pictures: steering over time, driven paths over the track map, rewards, and a GIF."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .episodes import Episode

GIF_SCALE = 2  # the 96x96 frames are enlarged (nearest neighbour) for the GIF
GIF_EVERY = 3  # keep every 3rd frame (shown at the simulator's pace, 50 frames per second)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def steering_over_time(episode: Episode, path: Path) -> Path:
    """The CNN's steering (applied) and the expert's for the same frames, over one held-out drive."""
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(episode.expert[:, 0], label="expert", color="tab:green", lw=1.2)
    ax.plot(episode.applied[:, 0], label="CNN", color="tab:red", lw=1.0, alpha=0.85)
    off = np.nonzero(episode.off_track)[0]
    if len(off):
        ax.scatter(off, np.full(len(off), -1.05), s=4, color="black", label="off track")
    ax.set_xlabel("frame (1/50 s)")
    ax.set_ylabel("steering (negative: left)")
    ax.set_ylim(-1.1, 1.1)
    ax.set_title(f"Track seed {episode.seed}: predicted versus expert steering")
    ax.legend(loc="upper right", ncol=3)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def driven_paths(drives: dict[str, list[Episode]], path: Path) -> Path:
    """One panel per held-out track: the centre line and the path each driver took."""
    seeds = [e.seed for e in next(iter(drives.values()))]
    fig, axes = plt.subplots(1, len(seeds), figsize=(3.6 * len(seeds), 3.8), squeeze=False)
    colors = {"cnn": "tab:red", "expert": "tab:green", "random": "tab:gray"}
    for k, ax in enumerate(axes[0]):
        track = drives[next(iter(drives))][k].track
        ax.plot(*np.vstack([track, track[:1]]).T, color="black", lw=6, alpha=0.15, label="road")
        ax.plot(*track[:1].T, "k^", ms=6)
        for name, episodes in drives.items():
            e = episodes[k]
            ax.plot(e.x, e.y, color=colors.get(name), lw=1.1, label=f"{name} {e.reward:.0f}")
        ax.set_aspect("equal")
        ax.set_title(f"seed {seeds[k]}")
        ax.axis("off")
        ax.legend(loc="lower left", fontsize=7)
    return _save(fig, path)


def rewards_per_round(rounds: list[dict], path: Path) -> Path:
    """Mean reward of the CNN's drives at the start of each DAgger round (the model of the round before)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    labels = [f"round {r['round']}" for r in rounds]
    ax.bar(labels, [r["drive_mean_reward"] for r in rounds], color="tab:red")
    ax.set_ylabel("mean reward of the CNN's drives")
    ax.set_title("DAgger: reward per round")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def drive_gif(episode: Episode, path: Path, frames: int) -> Path:
    """An animated GIF of the first `frames` frames of a drive, with the CNN's (red) and expert's (green) steering.

    The bars under each frame grow from the middle: left for steering left, right for steering right.
    """
    images = []
    for t in range(0, min(frames, len(episode.frames)), GIF_EVERY):
        big = np.kron(episode.frames[t], np.ones((GIF_SCALE, GIF_SCALE, 1), np.uint8))
        bars = np.full((14, big.shape[1], 3), 30, np.uint8)
        middle = big.shape[1] // 2
        for row, value, color in ((2, episode.applied[t, 0], (230, 40, 40)), (8, episode.expert[t, 0], (40, 200, 60))):
            end = middle + int(value * (middle - 4))
            bars[row : row + 4, min(middle, end) : max(middle, end) + 1] = color
        images.append(np.concatenate([big, bars]))
    imageio.mimsave(path, images, duration=1000 * GIF_EVERY / 50, loop=0)
    return path
