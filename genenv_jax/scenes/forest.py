"""The ``forest`` world: side-view landscapes for educational and game scenes.

Sky with a vertical gradient, far hills, a ground band with a rolling
horizon, and trees (trunk plus a round or conical crown) standing on the
ground, near trees larger and lower in the frame. The extra map is depth
(0 near, 1 far), stored in the scene's height slot.

Validity rules (real scenes satisfy each exactly; generated ones are allowed
``TOLERANCE`` of violating pixels):

* ``sky_on_top``: no sky below the ground in any column.
* ``trees_rooted``: every trunk reaches the ground.
* ``crowns_on_trunks``: foliage touches a trunk.
* ``horizon_band``: sky covers 10-60% of the frame.
* ``has_trees``: at least one trunk and some foliage.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, render

SKY, HILLS, GROUND, TRUNK, FOLIAGE = range(5)
TOLERANCE = 0.03
_WORLD_ID = 3003
_FOUR = ndimage.generate_binary_structure(2, 1)


def backdrop(r: int, hill_top: np.ndarray, ground_top: np.ndarray):
  """Sky, hills and ground of an r-row view from per-column profiles -> (labels [r, w] uint8, depth [r, w])."""
  yy = np.arange(r, dtype=np.float32)[:, None]
  labels = np.full((r, len(hill_top)), SKY, np.uint8)
  depth = np.ones((r, len(hill_top)), np.float32)
  hills = yy >= hill_top[None, :]
  ground = yy >= ground_top[None, :]
  labels[hills] = HILLS
  depth[hills] = 0.8
  labels[ground] = GROUND
  depth[ground] = np.clip(1.0 - (yy - ground_top[None, :]) / (r - ground_top[None, :] + 1e-6), 0, 1)[ground] * 0.6
  return labels, depth


class ForestWorld:
  """Side-view forest landscapes: sky, hills, ground, trunks, foliage."""

  name = "forest"
  version = 1
  class_names = ("sky", "hills", "ground", "trunk", "foliage")
  palette = np.array([[150, 196, 236], [96, 128, 120], [120, 150, 70], [96, 64, 40], [40, 110, 48]], np.uint8)
  scene_class_names = ("sparse", "woods", "dense")
  rule_names = ("sky_on_top", "trees_rooted", "crowns_on_trunks", "horizon_band", "has_trees")
  stat_names = (
    "frac_sky",
    "frac_hills",
    "frac_ground",
    "frac_trunk",
    "frac_foliage",
    "trunks_per_100_px_width",
    "mean_trunk_height",
    "horizon_row",
    "mean_depth",
  )
  min_size = 16
  ground = None  # a side view: its third channel is depth, not height

  def generate(self, seed: int, size: int) -> base.Scene:
    return base.rejection_sample(self, self._draw, _WORLD_ID, seed, size)

  def _draw(self, rng, r):
    kind = int(rng.integers(3))
    x = np.arange(r, dtype=np.float32)
    yy = np.arange(r, dtype=np.float32)[:, None]
    hill_top = r * (rng.uniform(0.25, 0.4) + 0.06 * np.sin(x / r * rng.uniform(3, 7) + rng.uniform(0, 6)))
    ground_top = r * (rng.uniform(0.45, 0.6) + 0.04 * np.sin(x / r * rng.uniform(2, 5) + rng.uniform(0, 6)))
    labels, depth = backdrop(r, hill_top, ground_top)
    n_trees = (2, 5, 9)[kind] + int(rng.integers(0, 3))
    # Far trees first, so near ones are drawn over them.
    bases = np.sort(rng.uniform(0.0, 1.0, n_trees))
    for b in bases:
      cx = int(rng.integers(0, r))
      gy = int(np.ceil(ground_top[cx]))
      base_y = min(r - 1, gy + int(b * (r - 1 - gy)))  # nearer trees stand lower in the frame
      scale = 0.35 + 0.65 * b
      h = max(4, int(r * rng.uniform(0.25, 0.45) * scale))
      tw = max(1, int(round(r / 32 * scale * rng.uniform(0.8, 1.5))))
      top = max(1, base_y - h)
      d = float(depth[min(base_y, r - 1), cx])
      x0, x1 = max(0, cx - tw // 2), min(r, cx - tw // 2 + tw)
      labels[top : base_y + 1, x0:x1] = TRUNK
      depth[top : base_y + 1, x0:x1] = d
      crown_r = max(2, int(h * rng.uniform(0.35, 0.5)))
      cy = top + crown_r // 2
      if rng.random() < 0.5:  # round crown
        crown = (yy - cy) ** 2 + ((x[None, :] - cx) * 1.1) ** 2 <= crown_r**2
      else:  # conifer: a triangle
        crown = (yy >= cy - crown_r) & (yy <= cy + crown_r) & (np.abs(x[None, :] - cx) <= (yy - (cy - crown_r)) * 0.55)
      crown &= yy < base_y - h * 0.25
      labels[crown] = FOLIAGE
      depth[crown] = d
    rgb = self._render(rng, r, labels, depth)
    return base.Scene(rgb=rgb, labels=labels, height=depth, scene_class=kind)

  def _render(self, rng, r, labels, depth):
    colours = self.palette.astype(np.float32) / 255.0
    colours = np.clip(colours + rng.normal(0, 0.03, colours.shape).astype(np.float32), 0, 1)
    rgb = colours[labels]
    yy = np.arange(r, dtype=np.float32)[:, None] / r
    sky = labels == SKY
    rgb[sky] = (rgb * (0.8 + 0.35 * yy)[..., None])[sky]  # lighter towards the horizon
    tex = render.value_noise(rng, r, max(2, r // 16))
    grain = rng.normal(0, 0.03, (r, r)).astype(np.float32)
    solid = ~sky
    rgb[solid] *= (0.85 + 0.3 * tex + grain)[solid][:, None]
    # Aerial perspective: far things fade towards the sky colour.
    haze = np.clip(depth, 0, 1)[..., None] * 0.35
    rgb = np.where(solid[..., None], rgb * (1 - haze) + colours[SKY] * haze, rgb)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)

  def validity(self, labels, height=None) -> dict[str, bool]:
    tol = TOLERANCE
    r = labels.shape[0]
    sky = labels == SKY
    ground = labels == GROUND
    # Sky below the highest ground pixel of its column.
    first_ground = np.where(ground.any(0), ground.argmax(0), r)
    rows = np.arange(r)[:, None]
    low_sky = sky & (rows > first_ground[None, :])
    out = {"sky_on_top": bool(low_sky.sum() <= tol * max(sky.sum(), 1))}
    trunk = labels == TRUNK
    lab, n = ndimage.label(trunk, _FOUR)
    if n:
      ring = ndimage.binary_dilation(ground, _FOUR)
      rooted = np.unique(lab[ring & trunk])
      rooted_px = np.isin(lab, rooted[rooted > 0]).sum()
      out["trees_rooted"] = bool(rooted_px >= (1 - tol) * trunk.sum())
    else:
      out["trees_rooted"] = True
    fol = labels == FOLIAGE
    if fol.any():
      flab, fn = ndimage.label(fol, _FOUR)
      near = ndimage.binary_dilation(trunk, _FOUR, iterations=2)
      held = np.unique(flab[near & fol])
      held_px = np.isin(flab, held[held > 0]).sum()
      out["crowns_on_trunks"] = bool(held_px >= (1 - tol) * fol.sum())
    else:
      out["crowns_on_trunks"] = True
    out["horizon_band"] = bool(0.10 <= sky.mean() <= 0.60)
    out["has_trees"] = bool(n >= 1 and fol.mean() >= 0.01)
    return out

  def statistics(self, labels, height=None) -> np.ndarray:
    r = labels.shape[0]
    fr = np.bincount(labels.ravel(), minlength=5)[:5] / labels.size
    trunk = labels == TRUNK
    lab, n = ndimage.label(trunk, _FOUR)
    if n:
      objs = ndimage.find_objects(lab)
      mean_h = float(np.mean([(o[0].stop - o[0].start) / r for o in objs if o is not None]))
    else:
      mean_h = 0.0
    sky = labels == SKY
    horizon = float((sky.sum(0)).mean() / r)
    md = float(height.mean()) if height is not None else 0.0
    return np.array([*fr, n / r * 100, mean_h, horizon, md], np.float32)
