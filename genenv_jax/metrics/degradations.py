"""Known degradations of real scenes, to check that a metric moves the right way.

Used by the tests and by ``tools/feature_sanity.py``; each takes and returns
uint8 RGB [n, h, w, 3].
"""

from __future__ import annotations

import numpy as np

from genenv_jax import scenes


def blur(rgb: np.ndarray) -> np.ndarray:
  """3x3 box blur (edges repeated)."""
  x = rgb.astype(np.float32)
  h, w = rgb.shape[1:3]
  p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  out = sum(p[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9
  return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def noise(rgb: np.ndarray, sigma: float = 16.0, seed: int = 0) -> np.ndarray:
  """Additive Gaussian noise of ``sigma`` levels."""
  x = rgb.astype(np.float32) + np.random.default_rng(seed).normal(0, sigma, rgb.shape)
  return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def world_rgb(world_name: str, first_seed: int, n: int, size: int = 32, drop_class: int | None = None) -> np.ndarray:
  """``n`` scenes of a world from ``first_seed`` on, skipping scene class ``drop_class`` (mode dropping)."""
  world = scenes.get_world(world_name)
  rgb, s = [], first_seed
  while len(rgb) < n:
    sc = world.generate(s, size)
    s += 1
    if sc.scene_class != drop_class:
      rgb.append(sc.rgb)
  return np.stack(rgb)
