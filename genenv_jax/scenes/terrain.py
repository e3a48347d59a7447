"""The ``terrain`` world: height maps with biomes, for simulation environments.

Fractal height (several octaves of smooth noise, with ridged mountains),
a sea level that floods the lowest ground into lakes or sea, rivers traced
downhill from high ground, and biomes from height and moisture: water, beach,
grass, forest, rock, snow. Rendered with colour per biome, texture and hill
shading.

Validity rules (real scenes satisfy each exactly; generated ones are allowed
``TOLERANCE`` of violating pixels):

* ``water_is_low``: water lies below the beach line.
* ``snow_is_high``: snow lies above the snow line.
* ``beach_by_water``: beaches touch water (within 2 px).
* ``biomes_ordered``: median heights rise water < beach < grass, forest < rock < snow.
* ``plausible_layout``: water covers at most 70% and at least three biomes appear.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, render

WATER, BEACH, GRASS, FOREST, ROCK, SNOW = range(6)
SEA = 0.30  # heights are in [0, 1]; water lies below this
BEACH_TOP = 0.34
ROCK_LINE = 0.68
SNOW_LINE = 0.80
TOLERANCE = 0.03
_WORLD_ID = 2002
_FOUR = ndimage.generate_binary_structure(2, 1)


class TerrainWorld:
  """Height maps with water, beaches, grass, forest, rock and snow."""

  name = "terrain"
  version = 1
  class_names = ("water", "beach", "grass", "forest", "rock", "snow")
  palette = np.array(
    [[52, 98, 176], [222, 206, 150], [118, 170, 82], [44, 110, 52], [128, 116, 104], [240, 242, 246]], np.uint8
  )
  scene_class_names = ("lowland", "hills", "mountains")
  rule_names = ("water_is_low", "snow_is_high", "beach_by_water", "biomes_ordered", "plausible_layout")
  stat_names = (
    "frac_water",
    "frac_beach",
    "frac_grass",
    "frac_forest",
    "frac_rock",
    "frac_snow",
    "mean_height",
    "std_height",
    "mean_slope",
    "water_bodies_per_1k_px",
  )
  min_size = 16
  ground = base.Ground(metres_per_pixel=25.0, height_range_m=1500.0)  # a 32-px scene is 800 m across

  def generate(self, seed: int, size: int) -> base.Scene:
    return base.rejection_sample(self, self._draw, _WORLD_ID, seed, size)

  def _draw(self, rng, r):
    kind = int(rng.integers(3))
    h = np.zeros((r, r), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(5):
      cell = max(2, int(r / (2 ** (octave + 1))))
      h += amp * render.value_noise(rng, r, cell)
      total += amp
      amp *= 0.5
    h /= total
    ridged = 1.0 - np.abs(2.0 * render.value_noise(rng, r, max(2, r // 3)) - 1.0)
    mountain_w = (0.1, 0.35, 0.6)[kind]
    h = (1 - mountain_w) * h + mountain_w * ridged**2
    lo, hi = np.percentile(h, 2), np.percentile(h, 99.5)
    spread = (0.75, 0.9, 1.0)[kind]
    h = np.clip((h - lo) / max(hi - lo, 1e-6), 0, 1) * spread + rng.uniform(0.0, 0.08)
    h = np.clip(h, 0, 1).astype(np.float32)
    labels = self._biomes(rng, r, h)
    self._rivers(rng, r, h, labels)
    labels = self._biomes_after_rivers(h, labels)
    rgb = self._render(rng, r, h, labels)
    return base.Scene(rgb=rgb, labels=labels, height=h, scene_class=kind)

  def _biomes(self, rng, r, h):
    moist = render.value_noise(rng, r, max(2, r // 4))
    labels = np.full((r, r), GRASS, np.uint8)
    labels[(moist > 0.55) & (h < ROCK_LINE)] = FOREST
    labels[h >= ROCK_LINE] = ROCK
    labels[h >= SNOW_LINE] = SNOW
    labels[h < BEACH_TOP] = BEACH
    labels[h < SEA] = WATER
    return labels

  def _rivers(self, rng, r, h, labels):
    """Rivers run downhill from random high points until they reach water or the edge."""
    n_rivers = int(rng.integers(0, 3))
    for _ in range(n_rivers):
      ys, xs = np.nonzero((h > 0.5) & (h < SNOW_LINE))
      if len(ys) == 0:
        return
      i = int(rng.integers(len(ys)))
      y, x = int(ys[i]), int(xs[i])
      for _ in range(4 * r):
        if labels[y, x] == WATER and h[y, x] < SEA:
          break
        labels[y, x] = WATER
        y0, y1, x0, x1 = max(y - 1, 0), min(y + 2, r), max(x - 1, 0), min(x + 2, r)
        win = h[y0:y1, x0:x1].copy()
        win[y - y0, x - x0] = np.inf
        win[labels[y0:y1, x0:x1] == WATER] += 0.5  # do not loop on itself
        dy, dx = np.unravel_index(np.argmin(win), win.shape)
        ny, nx = y0 + dy, x0 + dx
        if h[ny, nx] > h[y, x] + 0.02 or ny in (0, r - 1) or nx in (0, r - 1):
          labels[ny, nx] = WATER
          break
        y, x = ny, nx
    # Carve: river beds lie at sea level, so water is always low.
    river = (labels == WATER) & (h >= SEA)
    h[river] = SEA - 0.01

  def _biomes_after_rivers(self, h, labels):
    water = labels == WATER
    near = ndimage.binary_dilation(water, _FOUR, iterations=1) & ~water
    beach = near & (h < ROCK_LINE - 0.1) & (labels != SNOW)
    labels = labels.copy()
    labels[beach & (labels == GRASS)] = BEACH
    # Beaches left without water (a raised shore) turn to grass.
    stray = (labels == BEACH) & ~ndimage.binary_dilation(water, _FOUR, iterations=2)
    labels[stray] = GRASS
    return labels

  def render(self, labels: np.ndarray, height: np.ndarray, seed: int = 0) -> np.ndarray:
    """Layout first: the RGB of a label and height map (e.g. a model's), drawn by this world's renderer."""
    r = labels.shape[0]
    rng = np.random.default_rng([_WORLD_ID, int(seed), int(r), 0x5E4D])
    return self._render(rng, r, height.astype(np.float32), labels)

  def _render(self, rng, r, h, labels):
    colours = self.palette.astype(np.float32) / 255.0
    rgb = colours[labels].copy()
    tex = render.value_noise(rng, r, 2)
    grain = rng.normal(0, 0.02, (r, r)).astype(np.float32)
    rgb *= (0.88 + 0.24 * tex + grain)[..., None]
    depth = np.clip((SEA - h) / SEA, 0, 1)
    wat = labels == WATER
    rgb[wat] *= (1.0 - 0.5 * depth[wat])[..., None]
    shaded = render.shade(rgb, np.where(wat, SEA, h), relief=10.0 * r / 64, shadow_len=0)
    return (np.clip(shaded, 0, 1) * 255 + 0.5).astype(np.uint8)

  def validity(self, labels, height=None) -> dict[str, bool]:
    tol = TOLERANCE
    out = {}
    present = [c for c in range(6) if (labels == c).any()]
    if height is not None:
      wat, snow = labels == WATER, labels == SNOW
      out["water_is_low"] = bool((wat & (height >= BEACH_TOP)).sum() <= tol * max(wat.sum(), 1))
      out["snow_is_high"] = bool((snow & (height < SNOW_LINE - 0.05)).sum() <= tol * max(snow.sum(), 1))
      med = {c: float(np.median(height[labels == c])) for c in present}
      chain = [[WATER], [BEACH], [GRASS, FOREST], [ROCK], [SNOW]]
      levels = [max(med[c] for c in grp if c in med) for grp in chain if any(c in med for c in grp)]
      lows = [min(med[c] for c in grp if c in med) for grp in chain if any(c in med for c in grp)]
      out["biomes_ordered"] = bool(all(levels[i] <= lows[i + 1] + 0.02 for i in range(len(levels) - 1)))
    else:
      out.update(water_is_low=True, snow_is_high=True, biomes_ordered=True)
    beach = labels == BEACH
    near = ndimage.binary_dilation(labels == WATER, _FOUR, iterations=2)
    out["beach_by_water"] = bool((beach & ~near).sum() <= tol * max(beach.sum(), 1))
    out["plausible_layout"] = bool((labels == WATER).mean() <= 0.7 and len(present) >= 3)
    return {k: out[k] for k in self.rule_names}

  def statistics(self, labels, height=None) -> np.ndarray:
    n = labels.size
    fr = np.bincount(labels.ravel(), minlength=6)[:6] / n
    if height is not None:
      gy, gx = np.gradient(height)
      mh, sh, slope = float(height.mean()), float(height.std()), float(np.sqrt(gx**2 + gy**2).mean() * labels.shape[0])
    else:
      mh = sh = slope = 0.0
    _, bodies = ndimage.label(labels == WATER, _FOUR)
    return np.array([*fr, mh, sh, slope, bodies / n * 1000], np.float32)
