"""``city_regions``: one unbounded city per seed, drawn region by region at 2 m per pixel.

``region(seed, y0, x0, height, width)`` is a pure function of the seed and
global pixel coordinates: overlapping regions agree pixel for pixel, and a
region is drawn from a bounded margin around it (two road-lattice periods).

* **Streets**: avenues run along one axis without a break (which axis is
  keyed by the seed), every ``PERIOD`` px with a seeded jitter; cross streets
  join consecutive avenues and a quarter of them are left out (merged
  blocks, T-junctions). Avenues cross water on bridges; cross streets stop
  at the shore, keeping only what still joins an avenue. So every road pixel
  belongs to the one network of the whole world.
* **Water**: sea and lakes where a low-frequency field is high, rivers where
  a second field crosses its middle value.
* **Blocks** (the cells between streets): parks (15%), open plazas (5%) or
  rows of buildings along the streets that bound them (depth 2-4 px,
  frontage 2-5 px), taller where a "downtown" field is high.
* **Rendering**: the city world's palette, texture, roof tints, ripples and
  shading, with every noise keyed to global coordinates.

Validity rules of a region (any size; ``TOLERANCE`` of violating pixels for
generated regions): roads form networks that reach the region's border
(none is an island), every building touches a road or the region's border
(its street may lie outside), nothing is built on water, buildings stand
and the ground is flat, roads cover 5-60% of the region.

``generate(seed, size)`` is the ``size`` x ``size`` region of world ``seed``
at a seeded offset: the crops the training datasets are made of.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, fields, render
from genenv_jax.scenes.city import (
  BUILDING,
  BUILDING_MIN_HEIGHT,
  GROUND,
  PARK,
  ROAD,
  WATER,
  CityWorld,
  heights_consistent,
)

PERIOD = 12  # px between streets (24 m)
JITTER = 2
ROAD_WIDTH = 2
DROP = 0.25  # share of cross streets left out
MARGIN = 2 * PERIOD
TOLERANCE = 0.03
OFFSET_RANGE = 1 << 20  # generate(): regions come from [-2^20, 2^20) in each axis
_FOUR = ndimage.generate_binary_structure(2, 1)
# Field tags.
_T_ORIENT, _T_AVE, _T_CROSS, _T_KEEP, _T_SEA, _T_RIVER, _T_BLOCK, _T_CELL = range(1, 9)
_T_DOWN, _T_TREE, _T_TREEH, _T_COL, _T_TEX, _T_GRAIN, _T_OFF = range(9, 16)


def _lines(seed: int, tag: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
  """Indices k and positions k*PERIOD + jitter of the lattice lines that can touch [lo, hi)."""
  k = np.arange(lo // PERIOD - 2, hi // PERIOD + 3, dtype=np.int64)
  jit = np.floor(fields.uniform(seed, tag, k) * (2 * JITTER + 1)).astype(np.int64) - JITTER
  return k, k * PERIOD + jit


class CityRegionsWorld(CityWorld):
  """The city world without edges (see the module docstring)."""

  name = "city_regions"
  version = 1
  scene_class_names = ("inland", "river", "coast")
  min_size = 16
  region_multiple = 1

  # ------------------------------------------------------------------ draw
  def generate(self, seed: int, size: int) -> base.Scene:
    """The ``size`` x ``size`` region of world ``seed`` at a seeded offset."""
    base.check_size(self.name, size, self.min_size)
    return self.region(seed, *fields.seeded_offset(seed, _T_OFF, OFFSET_RANGE), size, size)

  def region(self, seed: int, y0: int, x0: int, height: int, width: int) -> base.Scene:
    """Rows ``y0 .. y0+height`` and columns ``x0 .. x0+width`` of world ``seed``."""
    fields.check_region(self.name, y0, x0, height, width, self.region_multiple, self.min_size)
    seed = int(seed)
    if fields.uniform(seed, _T_ORIENT, 0) < 0.5:  # avenues horizontal: draw transposed
      s = self._draw(seed, int(x0), int(y0), int(width), int(height))
      return base.Scene(rgb=s.rgb.transpose(1, 0, 2).copy(), labels=s.labels.T.copy(), height=s.height.T.copy(),
                        scene_class=s.scene_class)  # fmt: skip
    return self._draw(seed, int(y0), int(x0), int(height), int(width))

  def _draw(self, seed, y0, x0, h, w) -> base.Scene:
    """Avenues vertical (columns), cross streets horizontal; drawn with a margin, then cropped."""
    m = MARGIN
    ys = np.arange(y0 - m, y0 + h + m, dtype=np.int64)
    xs = np.arange(x0 - m, x0 + w + m, dtype=np.int64)
    H, W = len(ys), len(xs)
    sea = fields.fbm(seed, _T_SEA, ys, xs, 192.0, 3) > 0.68
    river = np.abs(fields.fbm(seed, _T_RIVER, ys, xs, 96.0, 2) - 0.5) < 0.02
    water = sea | river
    labels = np.full((H, W), GROUND, np.uint8)
    height = np.full((H, W), 0.03, np.float32)

    ave_k, ave_x = _lines(seed, _T_AVE, xs[0], xs[-1] + 1)  # avenues: columns
    cr_k, cr_y = _lines(seed, _T_CROSS, ys[0], ys[-1] + 1)  # cross-street rows
    cx = ave_x - xs[0]  # canvas columns
    cy = cr_y - ys[0]
    rw = ROAD_WIDTH
    avenue = np.zeros((H, W), bool)
    for c in cx:
      avenue[:, max(c, 0) : max(c + rw, 0)] = True
    cross = np.zeros((H, W), bool)
    kept = {}
    for a in range(len(ave_k) - 1):
      for b, r in enumerate(cy):
        on = bool(fields.uniform(seed, _T_KEEP, ave_k[a], cr_k[b]) >= DROP)
        kept[(a, b)] = on
        if not on:
          continue
        c0, c1 = cx[a] + rw, cx[a + 1]
        if c1 <= 0 or c0 >= W or r + rw <= 0 or r >= H:
          continue
        r0, r1, cc0, cc1 = max(r, 0), min(r + rw, H), max(c0, 0), min(c1, W)
        seg = water[r0:r1, cc0:cc1].any(0)  # wet columns of this street
        if seg.any():
          # Stop at the shore: keep the stretches that still reach an avenue at either end.
          wet = np.nonzero(seg)[0]
          keep = np.zeros_like(seg)
          if c0 >= 0:
            keep[: wet[0]] = True
          if c1 <= W:
            keep[wet[-1] + 1 :] = True
          cross[r0:r1, cc0:cc1] = keep[None, :]
        else:
          cross[r0:r1, cc0:cc1] = True
    road = avenue | cross

    down = fields.value_noise(seed, _T_DOWN, ys, xs, 120.0)
    trees = fields.white(seed, _T_TREE, ys, xs) < 0.18
    trees = ndimage.binary_dilation(trees, _FOUR)
    tree_h = 0.04 + 0.03 + 0.09 * fields.white(seed, _T_TREEH, ys, xs)
    near_water = ndimage.binary_dilation(water, _FOUR)
    road_ring = ndimage.binary_dilation(road, _FOUR)
    for a in range(len(ave_k) - 1):
      for b in range(len(cr_k) - 1):
        bx0, bx1 = cx[a] + rw, cx[a + 1]
        by0, by1 = cy[b] + rw, cy[b + 1]
        if bx1 <= 0 or bx0 >= W or by1 <= 0 or by0 >= H or bx1 <= bx0 or by1 <= by0:
          continue
        cell = (slice(max(by0, 0), min(by1, H)), slice(max(bx0, 0), min(bx1, W)))
        roll = fields.uniform(seed, _T_BLOCK, ave_k[a], cr_k[b])
        # A left-out cross street below this block: its strip joins the block.
        below = (slice(max(cy[b + 1], 0), min(cy[b + 1] + rw, H)), cell[1])
        if roll < 0.15:
          for sl in (cell, below) if not kept[(a, b + 1)] else (cell,):
            free = ~water[sl] & ~road[sl]
            labels[sl][free] = PARK
            hs = height[sl]
            hs[free] = 0.04
            t = free & trees[sl]
            hs[t] = tree_h[sl][t]
          continue
        if roll < 0.2:
          continue  # plaza: open ground
        self._buildings(seed, ave_k[a], cr_k[b], (by0, by1, bx0, bx1), labels, height, road_ring, near_water, down)
    labels[water] = WATER
    height[water] = 0.0
    labels[road] = ROAD
    height[road] = 0.02
    height[road & water] = 0.05  # bridges
    rgb = self._render_global(seed, ys, xs, labels, height)
    crop = (slice(m, m + h), slice(m, m + w))
    lab = labels[crop]
    kind = 2 if sea[crop].any() else (1 if river[crop].any() else 0)
    return base.Scene(rgb=rgb[crop], labels=lab, height=height[crop], scene_class=kind)

  @staticmethod
  def _buildings(seed, ka, kb, box, labels, height, road_ring, near_water, down):
    """Rows of buildings along the streets around one block (box in canvas pixels)."""
    by0, by1, bx0, bx1 = box
    H, W = labels.shape
    rng = np.random.default_rng(int(fields.hash_u64(seed, _T_CELL, ka, kb)))
    d = int(rng.integers(2, 5))
    rects = []
    for edge in ("top", "bottom", "left", "right"):
      along = (bx0, bx1) if edge in ("top", "bottom") else (by0 + d, by1 - d)
      p = along[0]
      while p < along[1] - 1:
        q = min(p + int(rng.integers(2, 6)), along[1])
        rects.append(
          {
            "top": (by0, min(by0 + d, by1), p, q),
            "bottom": (max(by1 - d, by0), by1, p, q),
            "left": (p, q, bx0, min(bx0 + d, bx1)),
            "right": (p, q, max(bx1 - d, bx0), bx1),
          }[edge]
        )
        p = q + int(rng.integers(0, 2))
    lift = rng.uniform(0.4, 1.0, len(rects))
    extra = rng.uniform(0.0, 0.1, len(rects))
    for (ry0, ry1, rx0, rx1), lf, ex in zip(rects, lift, extra):
      if ry1 <= ry0 or rx1 <= rx0 or ry1 <= 0 or rx1 <= 0 or ry0 >= H or rx0 >= W:
        continue
      if ry0 < 0 or rx0 < 0 or ry1 > H or rx1 > W:
        continue  # beyond the canvas margin: never inside the region
      cell = (slice(ry0, ry1), slice(rx0, rx1))
      if near_water[cell].any() or not road_ring[cell].any() or (labels[cell] == BUILDING).any():
        continue
      dn = float(down[(ry0 + ry1) // 2, (rx0 + rx1) // 2])
      labels[cell] = BUILDING
      height[cell] = min(BUILDING_MIN_HEIGHT + 0.05 + 0.6 * dn * dn * lf + ex, 1.0)

  def _render_global(self, seed, ys, xs, labels, height) -> np.ndarray:
    """The city renderer with every noise keyed to global coordinates (32-px-scene scale)."""
    u = 0.5
    colours = self.palette.astype(np.float32) / 255.0
    # Each class's colour drifts across districts (a field, not one tint per world).
    rgb = colours[labels].copy()
    for c in np.unique(labels):
      mask = labels == c
      for ch in range(3):
        drift = fields.value_noise(seed, _T_COL * 64 + 3 * int(c) + ch, ys, xs, 160.0)
        rgb[..., ch][mask] += (drift[mask] - 0.5) * 0.12
    rgb = np.clip(rgb, 0, 1)
    noise = fields.value_noise(seed, _T_TEX, ys, xs, 2.0)
    grain = (fields.white(seed, _T_GRAIN, ys, xs) - 0.5) * 0.087
    rgb *= (0.9 + 0.2 * noise + grain)[..., None]
    bld = labels == BUILDING
    if bld.any():
      tint = np.sin(height * 97.0)[..., None] * np.array([0.12, 0.06, 0.1], np.float32)
      rgb[bld] = np.clip(rgb[bld] + tint[bld], 0, 1)
    wat = labels == WATER
    yy = ys.astype(np.float32)[:, None]
    xx = xs.astype(np.float32)[None, :]
    ripple = 0.06 * np.sin(np.mod(xx + 0.5 * yy, 1000.0) * (1.7 / u) + 6 * noise)
    rgb[wat] = np.clip(rgb[wat] * (1 + ripple[wat, None]), 0, 1)
    canopy = (labels == PARK) & (height > 0.06)
    rgb[canopy] *= np.array([0.55, 0.75, 0.5], np.float32)
    shaded = render.shade(rgb, height, relief=6.0 * u, shadow_len=2)
    return (shaded * 255.0 + 0.5).astype(np.uint8)

  def render(self, labels: np.ndarray, height: np.ndarray, seed: int = 0, y0: int = 0, x0: int = 0) -> np.ndarray:
    """Layout first: the RGB of a label and height map placed at (y0, x0) of world ``seed``."""
    ys = np.arange(y0, y0 + labels.shape[0], dtype=np.int64)
    xs = np.arange(x0, x0 + labels.shape[1], dtype=np.int64)
    return self._render_global(int(seed), ys, xs, labels, height.astype(np.float32))

  # ------------------------------------------------------------------ judge
  def validity(self, labels: np.ndarray, height: np.ndarray | None = None) -> dict[str, bool]:
    """The rules of a region of any size (see the module docstring)."""
    tol = TOLERANCE
    road, bld, wat = labels == ROAD, labels == BUILDING, labels == WATER
    n_px, n_road, n_bld = labels.size, int(road.sum()), int(bld.sum())
    border = np.zeros(labels.shape, bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    out = {}
    if n_road:
      lab, _ = ndimage.label(road, _FOUR)
      reach = np.unique(lab[border & road])
      out["road_connected"] = bool(np.isin(lab, reach[reach > 0]).sum() >= (1 - tol) * n_road)
    else:
      out["road_connected"] = False
    if n_bld:
      lab, _ = ndimage.label(bld, _FOUR)
      ok = np.unique(lab[(ndimage.binary_dilation(road, _FOUR) | border) & bld])
      out["buildings_touch_road"] = bool(np.isin(lab, ok[ok > 0]).sum() >= (1 - tol) * n_bld)
      wet = ndimage.binary_dilation(wat, _FOUR) & bld
      out["nothing_built_on_water"] = bool(wet.sum() <= tol * n_bld)
    else:
      out["buildings_touch_road"] = out["nothing_built_on_water"] = True
    out["heights_consistent"] = heights_consistent(bld, height, tol)
    out["plausible_layout"] = bool(0.05 <= n_road / n_px <= 0.6)
    return out
