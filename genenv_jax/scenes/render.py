"""Shared numpy rendering: texture noise, hill shading and cast shadows."""

from __future__ import annotations

import numpy as np


def value_noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
  """Smooth [size, size] noise in [0, 1]: bilinear interpolation of a coarse grid."""
  n = size // cell + 2
  grid = rng.random((n, n), dtype=np.float32)
  t = (np.arange(size, dtype=np.float32) + 0.5) / cell
  i = t.astype(np.int32)
  f = t - i
  f = f * f * (3 - 2 * f)
  a = grid[i][:, i] * (1 - f)[None, :] + grid[i][:, i + 1] * f[None, :]
  b = grid[i + 1][:, i] * (1 - f)[None, :] + grid[i + 1][:, i + 1] * f[None, :]
  return a * (1 - f)[:, None] + b * f[:, None]


def shade(
  rgb: np.ndarray,
  height: np.ndarray,
  relief: float,
  shadow_len: int,
  shadow_strength: float = 0.45,
) -> np.ndarray:
  """Lambert hill shading from the north-west plus cast shadows to the south-east.

  Args:
    rgb: [h, w, 3] float32 colours in [0, 1].
    height: [h, w] float32 height in [0, 1].
    relief: scale from height units to pixels for the surface normal.
    shadow_len: longest shadow in pixels.
    shadow_strength: fraction of light removed inside a shadow.

  Returns:
    [h, w, 3] float32 shaded colours in [0, 1].
  """
  gy, gx = np.gradient(height * relief)
  # Light from the upper left, 45 degrees up.
  light = np.array([-1.0, -1.0, 1.4], np.float32)
  light /= np.linalg.norm(light)
  norm = np.sqrt(gx * gx + gy * gy + 1.0)
  lambert = (-gx * light[0] - gy * light[1] + light[2]) / norm
  lambert = np.clip(lambert / light[2], 0.55, 1.25)
  shadow = np.zeros_like(height, dtype=bool)
  drop = 1.0 / max(shadow_len, 1)
  padded = np.pad(height, ((shadow_len, 0), (shadow_len, 0)), mode="edge")
  h, w = height.shape
  for k in range(1, shadow_len + 1):
    caster = padded[shadow_len - k : shadow_len - k + h, shadow_len - k : shadow_len - k + w]
    shadow |= caster - k * drop > height + 0.02
  light_map = lambert * np.where(shadow, 1.0 - shadow_strength, 1.0)
  return np.clip(rgb * light_map[..., None], 0.0, 1.0)
