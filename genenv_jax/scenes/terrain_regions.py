"""``terrain_regions``: one unbounded landscape per seed, drawn region by region at 25 m per pixel.

``region(seed, y0, x0, height, width)`` is a pure function of the seed and
global pixel coordinates (overlapping regions agree exactly; a region needs
an 8-px margin around it):

* **Height**: fractal noise at the 32-px scene scale blended with ridged
  mountains, the blend and a regional elevation drifting over kilometres
  (lowlands with sea and lakes, hills, mountain ranges with snow).
* **Rivers** where a meandering field crosses its middle value below the
  rock line, their beds carved to below sea level.
* **Biomes** from height and moisture, as the bounded terrain world: water,
  beach (by water), grass, forest, rock, snow.

Validity rules of a region (any size; ``TOLERANCE`` of violating pixels for
generated ones): water is low, snow is high, beaches lie within 2 px of
water or of the region's border, median heights rise water < beach < grass,
forest < rock < snow, and every biome lies in its height band
(``plausible_layout`` here; a region may be all sea or all rock).

``generate(seed, size)`` is the ``size`` x ``size`` region of world ``seed``
at a seeded offset: the crops the training datasets are made of.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, fields, render
from genenv_jax.scenes.terrain import (
  BEACH,
  BEACH_TOP,
  FOREST,
  GRASS,
  ROCK,
  ROCK_LINE,
  SEA,
  SNOW,
  SNOW_LINE,
  WATER,
  TerrainWorld,
)

MARGIN = 8
BANK = 0.08  # river banks up to this far above the beach line are beaches
TOLERANCE = 0.03
OFFSET_RANGE = 1 << 20
_FOUR = ndimage.generate_binary_structure(2, 1)
_T_H, _T_MW, _T_RIDGE, _T_ELEV, _T_RIVER, _T_MOIST, _T_TEX, _T_GRAIN, _T_OFF = range(21, 30)


class TerrainRegionsWorld(TerrainWorld):
  """The terrain world without edges (see the module docstring)."""

  name = "terrain_regions"
  version = 1
  min_size = 16
  region_multiple = 1

  def generate(self, seed: int, size: int) -> base.Scene:
    """The ``size`` x ``size`` region of world ``seed`` at a seeded offset."""
    base.check_size(self.name, size, self.min_size)
    return self.region(seed, *fields.seeded_offset(seed, _T_OFF, OFFSET_RANGE), size, size)

  def region(self, seed: int, y0: int, x0: int, height: int, width: int) -> base.Scene:
    """Rows ``y0 .. y0+height`` and columns ``x0 .. x0+width`` of world ``seed``."""
    fields.check_region(self.name, y0, x0, height, width, self.region_multiple, self.min_size)
    seed, m = int(seed), MARGIN
    ys = np.arange(int(y0) - m, int(y0) + int(height) + m, dtype=np.int64)
    xs = np.arange(int(x0) - m, int(x0) + int(width) + m, dtype=np.int64)
    h0 = fields.fbm(seed, _T_H, ys, xs, 32.0, 5)
    mw_field = fields.value_noise(seed, _T_MW, ys, xs, 256.0)
    mw = 0.1 + 0.5 * mw_field
    ridged = 1.0 - np.abs(2.0 * fields.fbm(seed, _T_RIDGE, ys, xs, 24.0, 2) - 1.0)
    large = fields.fbm(seed, _T_ELEV, ys, xs, 320.0, 3)
    h = (1 - mw) * (0.45 * h0 + 0.55 * large) + mw * ridged**2
    h = np.clip((h - 0.47) * 2.0 + 0.45, 0, 1).astype(np.float32)
    river = (np.abs(fields.fbm(seed, _T_RIVER, ys, xs, 80.0, 2) - 0.5) < 0.015) & (h < ROCK_LINE)
    h = np.where(river, np.minimum(h, SEA - 0.01), h).astype(np.float32)
    moist = fields.value_noise(seed, _T_MOIST, ys, xs, 8.0)
    labels = np.full(h.shape, GRASS, np.uint8)
    labels[(moist > 0.55) & (h < ROCK_LINE)] = FOREST
    labels[h >= ROCK_LINE] = ROCK
    labels[h >= SNOW_LINE] = SNOW
    labels[h < BEACH_TOP] = BEACH
    labels[(h < SEA) | river] = WATER
    water = labels == WATER
    near = ndimage.binary_dilation(water, _FOUR, iterations=1) & ~water
    labels[near & (h < BEACH_TOP + BANK) & (labels == GRASS)] = BEACH  # low river banks
    stray = (labels == BEACH) & ~ndimage.binary_dilation(water, _FOUR, iterations=2)
    labels[stray] = GRASS
    rgb = self._render_global(seed, ys, xs, h, labels)
    crop = (slice(m, m + int(height)), slice(m, m + int(width)))
    c = float(mw_field[crop].mean())
    kind = 0 if c < 0.4 else (1 if c < 0.6 else 2)
    return base.Scene(rgb=rgb[crop], labels=labels[crop], height=h[crop], scene_class=kind)

  def _render_global(self, seed, ys, xs, h, labels) -> np.ndarray:
    """The terrain renderer with its texture keyed to global coordinates (32-px-scene scale)."""
    colours = self.palette.astype(np.float32) / 255.0
    rgb = colours[labels].copy()
    tex = fields.value_noise(seed, _T_TEX, ys, xs, 2.0)
    grain = (fields.white(seed, _T_GRAIN, ys, xs) - 0.5) * 0.07
    rgb *= (0.88 + 0.24 * tex + grain)[..., None]
    depth = np.clip((SEA - h) / SEA, 0, 1)
    wat = labels == WATER
    rgb[wat] *= (1.0 - 0.5 * depth[wat])[..., None]
    shaded = render.shade(rgb, np.where(wat, SEA, h), relief=5.0, shadow_len=0)
    return (np.clip(shaded, 0, 1) * 255 + 0.5).astype(np.uint8)

  def render(self, labels: np.ndarray, height: np.ndarray, seed: int = 0, y0: int = 0, x0: int = 0) -> np.ndarray:
    """Layout first: the RGB of a label and height map placed at (y0, x0) of world ``seed``."""
    ys = np.arange(y0, y0 + labels.shape[0], dtype=np.int64)
    xs = np.arange(x0, x0 + labels.shape[1], dtype=np.int64)
    return self._render_global(int(seed), ys, xs, height.astype(np.float32), labels)

  def validity(self, labels, height=None) -> dict[str, bool]:
    """The rules of a region of any size (see the module docstring)."""
    tol = TOLERANCE
    out = super().validity(labels, height)
    border = np.zeros(labels.shape, bool)
    border[:2, :] = border[-2:, :] = border[:, :2] = border[:, -2:] = True
    beach = labels == BEACH
    near = ndimage.binary_dilation(labels == WATER, _FOUR, iterations=2) | border
    out["beach_by_water"] = bool((beach & ~near).sum() <= tol * max(beach.sum(), 1))
    if height is None:
      out["plausible_layout"] = True
      return out
    bands = {
      WATER: (0.0, BEACH_TOP),
      BEACH: (SEA - 0.02, BEACH_TOP + BANK),
      GRASS: (SEA - 0.02, ROCK_LINE),
      FOREST: (SEA - 0.02, ROCK_LINE),
      ROCK: (ROCK_LINE - 0.02, 1.01),
      SNOW: (SNOW_LINE - 0.05, 1.01),
    }
    outside = 0
    for c, (lo, hi) in bands.items():
      hc = height[labels == c]
      outside += int(((hc < lo) | (hc >= hi)).sum())
    out["plausible_layout"] = bool(outside <= tol * labels.size)
    return out
