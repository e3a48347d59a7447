"""``forest_regions``: one endless side-view landscape per seed, unbounded along x.

A side view has a top (sky) and a bottom (near ground), so this world is
unbounded horizontally only: every region spans the whole 32-px view height
(0.5 m per pixel, a 16 m tall view) and any stretch of columns.
``region(seed, 0, x0, 32, width)`` is a pure function of the seed and the
global column coordinates (overlapping regions agree exactly; a region needs
a 10-px margin either side):

* **Profiles**: far hills and the ground's horizon from value noise keyed by
  the column, drifting over tens of metres.
* **Trees** from 4-px column cells: a cell holds a tree with a probability
  that follows a slow "density" field (clearings, woods, dense forest); its
  position, nearness, size, trunk and crown (round or conifer) are hashes of
  (seed, cell). Far trees are drawn first; near ones stand lower and larger.
* **Rendering**: the forest palette with colours, texture and grain keyed to
  global coordinates, a sky gradient by row and aerial perspective by depth.

Rules of a region (any width; ``TOLERANCE`` of violating pixels for
generated ones): no sky below the ground in any column, every trunk reaches
the ground (or disappears behind a nearer crown), every crown touches a trunk
or the region's left or right border (its trunk may lie outside), and sky
covers 10-60% of the view. ``generate(seed, 32)`` is the 32-px-wide region of
world ``seed`` at a seeded offset: the crops the training datasets are made of.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, fields
from genenv_jax.scenes.forest import FOLIAGE, GROUND, SKY, TRUNK, ForestWorld, backdrop

VIEW = 32  # the view height in pixels: every region spans it
CELL = 4  # columns per tree cell
MARGIN = 10  # > the widest crown's half-width
TOLERANCE = 0.03
OFFSET_RANGE = 1 << 20
_FOUR = ndimage.generate_binary_structure(2, 1)
_T_HILL, _T_GROUND, _T_DENS, _T_TREE, _T_TEX, _T_GRAIN, _T_TINT, _T_OFF = range(41, 49)


class ForestRegionsWorld(ForestWorld):
  """The forest world without side edges (see the module docstring)."""

  name = "forest_regions"
  version = 1
  min_size = VIEW
  region_multiple = 1
  rule_names = ("sky_on_top", "trees_rooted", "crowns_on_trunks", "horizon_band")

  def generate(self, seed: int, size: int) -> base.Scene:
    """The ``size`` x ``size`` region of world ``seed`` at a seeded offset (``size`` must be the view height)."""
    base.check_size(self.name, size, self.min_size)
    if size != VIEW:
      raise ValueError(
        f"data.image_size={size}: world {self.name!r} is a side view {VIEW} px tall, unbounded along x only; "
        f"train on {VIEW}-px crops (data.image_size={VIEW})"
      )
    _, x0 = fields.seeded_offset(seed, _T_OFF, OFFSET_RANGE)
    return self.region(seed, 0, x0, VIEW, VIEW)

  def region(self, seed: int, y0: int, x0: int, height: int, width: int) -> base.Scene:
    """Columns ``x0 .. x0+width`` of world ``seed``; rows must be the whole view (``y0=0``, ``height=32``)."""
    fields.check_region(self.name, y0, x0, height, width, self.region_multiple, self.min_size)
    if y0 != 0 or height != VIEW:
      raise ValueError(
        f"region y0={y0}, height={height} for world {self.name!r}: a side view spans rows 0..{VIEW} "
        f"(y0=0, height={VIEW}); it is unbounded along x only"
      )
    seed, m, r = int(seed), MARGIN, VIEW
    xs = np.arange(int(x0) - m, int(x0) + int(width) + m, dtype=np.int64)
    n = len(xs)
    row0 = np.zeros(1, np.int64)
    hill_top = r * (0.2 + 0.18 * fields.value_noise(seed, _T_HILL, row0, xs, 24.0)[0])
    ground_top = r * (0.45 + 0.15 * fields.value_noise(seed, _T_GROUND, row0, xs, 40.0)[0])
    yy = np.arange(r, dtype=np.float32)[:, None]
    labels, depth = backdrop(r, hill_top, ground_top)
    for cx, b, h, tw, crown_r, conifer in self._trees(seed, int(xs[0]), int(xs[-1]) + 1):
      c = cx - int(xs[0])  # column in the padded window
      gy = int(np.ceil(ground_top[c]))
      base_y = min(r - 1, gy + int(b * (r - 1 - gy)))
      top = max(1, base_y - h)
      d = float(depth[base_y, c])
      lo, hi = max(0, c - tw // 2), min(n, c - tw // 2 + tw)
      labels[top : base_y + 1, lo:hi] = TRUNK
      depth[top : base_y + 1, lo:hi] = d
      cy = top + crown_r // 2
      xx = np.arange(n, dtype=np.float32)[None, :]
      if conifer:
        crown = (yy >= cy - crown_r) & (yy <= cy + crown_r) & (np.abs(xx - c) <= (yy - (cy - crown_r)) * 0.55)
      else:
        crown = (yy - cy) ** 2 + ((xx - c) * 1.1) ** 2 <= crown_r**2
      crown &= yy < base_y - h * 0.25
      labels[crown] = FOLIAGE
      depth[crown] = d
    rgb = self._render_global(seed, xs, labels, depth)
    crop = (slice(None), slice(m, m + int(width)))
    dens = float(fields.value_noise(seed, _T_DENS, row0, xs[m : m + int(width)], 96.0).mean())
    kind = 0 if dens < 0.4 else (1 if dens < 0.6 else 2)
    return base.Scene(rgb=rgb[crop], labels=labels[crop], height=depth[crop], scene_class=kind)

  def _trees(self, seed: int, xa: int, xb: int):
    """Trees whose trunk stands in columns [xa, xb), far ones first (a pure function of each tree's cell)."""
    r = VIEW
    k0, k1 = xa // CELL, -(-xb // CELL)
    ks = np.arange(k0, k1, dtype=np.int64)
    row0 = np.zeros(1, np.int64)
    centres = ks * CELL + CELL // 2
    dens = fields.value_noise(seed, _T_DENS, row0, centres, 96.0)[0]
    u = [fields.uniform(seed, _T_TREE + 100 * i, ks) for i in range(7)]
    trees = []
    for j in range(len(ks)):
      if u[0][j] >= 0.15 + 0.6 * dens[j]:
        continue
      cx = int(ks[j] * CELL + int(u[1][j] * CELL))
      if not xa <= cx < xb:
        continue
      b = float(u[2][j])
      scale = 0.35 + 0.65 * b
      h = max(4, int(r * (0.25 + 0.2 * u[3][j]) * scale))
      tw = max(1, int(round(r / 32 * scale * (0.8 + 0.7 * u[4][j]))))
      crown_r = max(2, int(h * (0.35 + 0.15 * u[5][j])))
      trees.append((b, cx, h, tw, crown_r, bool(u[6][j] < 0.5)))
    trees.sort()
    return [(cx, b, h, tw, cr, con) for b, cx, h, tw, cr, con in trees]

  def _render_global(self, seed, xs, labels, depth) -> np.ndarray:
    r = VIEW
    ys = np.arange(r, dtype=np.int64)
    colours = self.palette.astype(np.float32) / 255.0
    tint = (fields.value_noise(seed, _T_TINT, np.arange(3, dtype=np.int64), xs, 64.0) - 0.5) * 0.08  # [3, w]
    rgb = colours[labels] + tint.T[None, :, :]
    yrel = ys.astype(np.float32)[:, None] / r
    sky = labels == SKY
    rgb[sky] = (rgb * (0.8 + 0.35 * yrel)[..., None])[sky]
    tex = fields.value_noise(seed, _T_TEX, ys, xs, 2.0)
    grain = (fields.white(seed, _T_GRAIN, ys, xs) - 0.5) * 0.1
    solid = ~sky
    rgb[solid] *= (0.85 + 0.3 * tex + grain)[solid][:, None]
    haze = np.clip(depth, 0, 1)[..., None] * 0.35
    rgb = np.where(solid[..., None], rgb * (1 - haze) + colours[SKY] * haze, rgb)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)

  def statistics(self, labels, height=None) -> np.ndarray:
    """The forest statistics with trunk density per 100 px of the region's width (not its height)."""
    out = super().statistics(labels, height)
    out[5] *= labels.shape[0] / labels.shape[1]
    return out

  def validity(self, labels, height=None) -> dict[str, bool]:
    """The rules of a region of any width (see the module docstring)."""
    tol = TOLERANCE
    r = labels.shape[0]
    sky, ground, trunk, fol = (labels == c for c in (SKY, GROUND, TRUNK, FOLIAGE))
    first_ground = np.where(ground.any(0), ground.argmax(0), r)
    low_sky = sky & (np.arange(r)[:, None] > first_ground[None, :])
    out = {"sky_on_top": bool(low_sky.sum() <= tol * max(sky.sum(), 1))}
    lab, n = ndimage.label(trunk, _FOUR)
    if n:
      ring = ndimage.binary_dilation(ground | fol, _FOUR)
      rooted = np.unique(lab[ring & trunk])
      out["trees_rooted"] = bool(np.isin(lab, rooted[rooted > 0]).sum() >= (1 - tol) * trunk.sum())
    else:
      out["trees_rooted"] = True
    if fol.any():
      flab, _ = ndimage.label(fol, _FOUR)
      near = ndimage.binary_dilation(trunk, _FOUR, iterations=2)
      near[:, :2] = near[:, -2:] = True
      held = np.unique(flab[near & fol])
      out["crowns_on_trunks"] = bool(np.isin(flab, held[held > 0]).sum() >= (1 - tol) * fol.sum())
    else:
      out["crowns_on_trunks"] = True
    out["horizon_band"] = bool(0.10 <= sky.mean() <= 0.60)
    return out
