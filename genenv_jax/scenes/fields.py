"""Fields keyed to global coordinates: the building blocks of worlds without edges.

Every function here is a pure function of (seed, tag, global integer
coordinates): the value at a pixel or lattice point never depends on which
region is being drawn, so overlapping regions agree exactly and a region can
be drawn alone. Hashing is SplitMix64 over uint64 (numpy wraps on overflow,
which is the intended arithmetic).
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
  z = (z ^ (z >> np.uint64(30))) * _M1
  z = (z ^ (z >> np.uint64(27))) * _M2
  return z ^ (z >> np.uint64(31))


def hash_u64(seed: int, tag: int, *coords) -> np.ndarray:
  """A uint64 hash of (seed, tag, coords...) elementwise over broadcast integer arrays."""
  with np.errstate(over="ignore"):
    z = _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _GOLDEN + np.uint64(tag))
    for c in coords:
      c = np.asarray(c, np.int64).astype(np.uint64)
      z = _mix(z ^ (c + _GOLDEN + (z << np.uint64(6)) + (z >> np.uint64(2))))
    return z


def uniform(seed: int, tag: int, *coords) -> np.ndarray:
  """Uniform [0, 1) floats (float64) keyed by (seed, tag, coords...)."""
  return (hash_u64(seed, tag, *coords) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def value_noise(seed: int, tag: int, ys: np.ndarray, xs: np.ndarray, period: float) -> np.ndarray:
  """Smooth noise in [0, 1] at global pixel rows ``ys`` [h] and columns ``xs`` [w] -> [h, w] float32.

  Lattice values every ``period`` pixels, smoothstep-interpolated; the value
  at a pixel depends only on its coordinates and the four lattice corners
  around it.
  """
  ty = (np.asarray(ys, np.float64) + 0.5) / period
  tx = (np.asarray(xs, np.float64) + 0.5) / period
  iy, ix = np.floor(ty).astype(np.int64), np.floor(tx).astype(np.int64)
  fy, fx = ty - iy, tx - ix
  fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
  y0, x0 = iy[:, None], ix[None, :]
  v00, v01 = uniform(seed, tag, y0, x0), uniform(seed, tag, y0, x0 + 1)
  v10, v11 = uniform(seed, tag, y0 + 1, x0), uniform(seed, tag, y0 + 1, x0 + 1)
  fx = fx[None, :]
  top = v00 * (1 - fx) + v01 * fx
  bottom = v10 * (1 - fx) + v11 * fx
  return (top * (1 - fy[:, None]) + bottom * fy[:, None]).astype(np.float32)


def fbm(seed: int, tag: int, ys, xs, period: float, octaves: int, gain: float = 0.5) -> np.ndarray:
  """Fractal sum of ``octaves`` value noises (periods halving), normalised to [0, 1]."""
  out, amp, total = 0.0, 1.0, 0.0
  for o in range(octaves):
    out = out + amp * value_noise(seed, tag * 64 + o, ys, xs, max(period / 2**o, 1.0))
    total += amp
    amp *= gain
  return (out / total).astype(np.float32)


def white(seed: int, tag: int, ys, xs) -> np.ndarray:
  """Per-pixel uniform [0, 1) noise [h, w] float32 at global rows ``ys`` and columns ``xs``."""
  return uniform(seed, tag, np.asarray(ys)[:, None], np.asarray(xs)[None, :]).astype(np.float32)


def seeded_offset(seed: int, tag: int, half_range: int) -> tuple[int, int]:
  """A region origin (y0, x0) in [-half_range, half_range)^2 keyed by the seed."""
  off = uniform(seed, tag, np.arange(2))
  y0, x0 = (np.floor(off * 2 * half_range).astype(np.int64) - half_range).tolist()
  return int(y0), int(x0)


def check_region(world: str, y0, x0, height, width, multiple: int, min_size: int) -> None:
  """Clear errors for region arguments a world cannot draw."""
  for name, v in (("y0", y0), ("x0", x0), ("height", height), ("width", width)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
      raise ValueError(f"region {name}={v!r} for world {world!r}: must be an integer (pixel coordinates)")
  for name, v in (("height", height), ("width", width)):
    if v < min_size or v % multiple:
      raise ValueError(
        f"region {name}={v} for world {world!r}: must be a multiple of {multiple} and at least {min_size}"
      )
  for name, v in (("y0", y0), ("x0", x0)):
    if abs(int(v)) >= 2**40:
      raise ValueError(f"region {name}={v} for world {world!r}: |coordinate| must be below 2**40")
