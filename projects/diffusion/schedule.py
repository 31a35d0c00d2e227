"""The noise schedule: how much of the image is left at each of the T forward (noising) steps.

Forward noising: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, eps ~ N(0, I), for t = 0 .. T-1, where
abar_t = prod_{s <= t} (1 - beta_s). `linear` (Ho et al., 2020): beta from 1e-4 to 0.02 (scaled for T other than
1000); `cosine` (Nichol & Dhariwal, 2021): abar_t follows cos^2, which destroys small images' detail less early.
"""

from __future__ import annotations

import numpy as np

COSINE_OFFSET = 0.008
MAX_BETA = 0.999


def betas(kind: str, timesteps: int) -> np.ndarray:
    """(T,) float64 beta_t in (0, 1) of the `kind` ("cosine" or "linear") schedule of `timesteps` steps."""
    if kind == "linear":
        scale = 1000 / timesteps
        return np.linspace(scale * 1e-4, min(scale * 0.02, MAX_BETA), timesteps, dtype=np.float64)
    if kind == "cosine":
        s = np.linspace(0, timesteps, timesteps + 1, dtype=np.float64) / timesteps
        f = np.cos((s + COSINE_OFFSET) / (1 + COSINE_OFFSET) * np.pi / 2) ** 2
        return np.clip(1 - f[1:] / f[:-1], 0.0, MAX_BETA)
    raise ValueError(f"unknown schedule {kind!r}: choose cosine or linear")


def alphas_cumprod(kind: str, timesteps: int) -> np.ndarray:
    """(T,) float64 abar_t: the share of the image's variance left after step t (falls from near 1 towards 0)."""
    return np.cumprod(1.0 - betas(kind, timesteps))


def ddim_timesteps(steps: int, timesteps: int) -> np.ndarray:
    """(steps,) int64 timesteps DDIM visits, from T-1 down to 0, evenly spaced (steps=1: T-1 only)."""
    return np.round(np.linspace(timesteps - 1, 0, steps)).astype(np.int64)
