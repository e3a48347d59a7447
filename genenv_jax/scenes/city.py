"""The ``city`` world: procedural top-down city maps.

A scene has a connected road network (a jittered grid with segments removed,
so T-junctions and merged blocks occur), blocks lined with rectangular
buildings of varying heights (taller towards a downtown centre), parks with
trees, and water (none, a river with some bridges, or a coast).

Validity rules (every real scene satisfies each exactly; generated scenes
are allowed ``TOLERANCE`` of violating pixels, since a model's label map is
an argmax of soft outputs):

* ``road_connected``: the road pixels form one 4-connected network.
* ``buildings_touch_road``: every building touches a road.
* ``nothing_built_on_water``: no building touches water.
* ``heights_consistent``: every building's median height is building height
  (>= 0.25) and the median of everything else is ground level (< 0.15).
* ``plausible_layout``: roads cover 5-60% of the map and water at most 60%.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, render

GROUND, ROAD, BUILDING, PARK, WATER = range(5)
TOLERANCE = 0.03
_WORLD_ID = 1001
_FOUR = ndimage.generate_binary_structure(2, 1)
_EIGHT = ndimage.generate_binary_structure(2, 2)
BUILDING_MIN_HEIGHT = 0.25
GROUND_MAX_HEIGHT = 0.15


def heights_consistent(bld: np.ndarray, height: np.ndarray | None, tol: float) -> bool:
  """Every building stands (median height >= BUILDING_MIN_HEIGHT, up to ``tol`` of building pixels); flat ground.

  Medians, not pixels: a building's footprint edge may blur in a generated
  height map; what must hold is that each building stands above the ground
  and the ground is flat.
  """
  n_bld = int(bld.sum())
  if height is None or not n_bld:
    return True
  lab, n = ndimage.label(bld, _FOUR)
  ids = np.arange(1, n + 1)
  med = np.asarray(ndimage.median(height, lab, ids))
  size = ndimage.sum_labels(bld, lab, ids)
  standing = size[med >= BUILDING_MIN_HEIGHT].sum() >= (1 - tol) * n_bld
  flat_ground = float(np.median(height[~bld])) < GROUND_MAX_HEIGHT if (~bld).any() else True
  return bool(standing and flat_ground)


class CityWorld:
  """Top-down city maps with roads, buildings, parks and water."""

  name = "city"
  version = 3  # bump whenever generate() changes its output
  class_names = ("ground", "road", "building", "park", "water")
  palette = np.array([[196, 186, 160], [70, 70, 78], [186, 98, 80], [84, 150, 70], [60, 110, 190]], np.uint8)
  scene_class_names = ("inland", "river", "coast")
  rule_names = (
    "road_connected",
    "buildings_touch_road",
    "nothing_built_on_water",
    "heights_consistent",
    "plausible_layout",
  )
  stat_names = (
    "frac_ground",
    "frac_road",
    "frac_building",
    "frac_park",
    "frac_water",
    "buildings_per_1k_px",
    "mean_building_px",
    "mean_building_height",
    "std_building_height",
    "road_edge_density",
  )
  min_size = 16
  ground = base.Ground(metres_per_pixel=2.0, height_range_m=100.0)  # a 32-px scene is 64 m across

  # ------------------------------------------------------------------ generate
  def generate(self, seed: int, size: int) -> base.Scene:
    """Draws scene ``seed`` at ``size`` x ``size`` pixels (deterministic)."""
    return base.rejection_sample(self, self._draw, _WORLD_ID, seed, size)

  def _draw(self, rng, size):
    r = size
    u = r / 64.0
    water, kind = self._water(rng, r)
    road, bridges = self._roads(rng, r, u, water)
    labels = np.full((r, r), GROUND, np.uint8)
    labels[water] = WATER
    labels[road] = ROAD
    height = np.full((r, r), 0.03, np.float32)
    height[water] = 0.0
    height[road] = 0.02
    height[road & water] = 0.05  # bridges
    del bridges
    self._blocks(rng, r, u, labels, height, road, water)
    rgb = self._render(rng, r, u, labels, height)
    return base.Scene(rgb=rgb, labels=labels, height=height, scene_class=kind)

  def render(self, labels: np.ndarray, height: np.ndarray, seed: int = 0) -> np.ndarray:
    """Layout first: the RGB of a label and height map (e.g. a model's), drawn by this world's renderer."""
    r = labels.shape[0]
    rng = np.random.default_rng([_WORLD_ID, int(seed), int(r), 0x5E4D])
    return self._render(rng, r, r / 64.0, labels, height.astype(np.float32))

  def _water(self, rng, r):
    kind = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
    t = np.arange(r, dtype=np.float32) / r
    water = np.zeros((r, r), bool)
    coord = np.arange(r, dtype=np.float32)[:, None] / r  # across the line
    if kind == 1:
      centre = rng.uniform(0.3, 0.7) + rng.uniform(0.05, 0.15) * np.sin(
        2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi)
      )
      width = rng.uniform(0.07, 0.13)
      water = np.abs(coord - centre[None, :]) < width / 2
    elif kind == 2:
      edge = rng.uniform(0.68, 0.85) + rng.uniform(0.02, 0.08) * np.sin(
        2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 2 * np.pi)
      )
      water = coord > edge[None, :]
    if kind and rng.random() < 0.5:
      water = water.T
    if kind:
      water = np.rot90(water, k=2 * int(rng.integers(2))).copy()
    return water, kind

  def _lines(self, rng, r, u):
    """Jittered road positions along one axis."""
    lo, hi = max(4, int(r / 5.5)), max(6, int(r / 3.2))
    pos, p = [], int(rng.integers(1, lo))
    while p < r - 2:
      pos.append(p)
      p += int(rng.integers(lo, hi + 1))
    return pos

  def _roads(self, rng, r, u, water):
    rw = max(2, int(round(2 * u)))  # at least 2 px: a road stays a road at 32 px
    xs, ys = self._lines(rng, r, u), self._lines(rng, r, u)
    bounds_x = [0] + xs + [r]
    bounds_y = [0] + ys + [r]
    # Graph: nodes are intersections plus border ends; edges are segments.
    # Each segment also covers both of its end squares, so a junction is drawn
    # whenever any of its segments is kept.
    seg_v = {}  # vertical road i between horizontal boundaries j, j+1
    for i, x in enumerate(xs):
      for j in range(len(bounds_y) - 1):
        seg_v[(i, j)] = (slice(bounds_y[j], bounds_y[j + 1] + rw), slice(x, x + rw))
    seg_h = {}
    for j, y in enumerate(ys):
      for i in range(len(bounds_x) - 1):
        seg_h[(j, i)] = (slice(y, y + rw), slice(bounds_x[i], bounds_x[i + 1] + rw))
    edges = [("v", k) for k in seg_v] + [("h", k) for k in seg_h]
    keep = {e: True for e in edges}
    order = rng.permutation(len(edges))
    for idx in order[: int(len(edges) * 0.3)]:
      e = edges[idx]
      keep[e] = False
      if not self._connected(keep, xs, ys):
        keep[e] = True
    road = np.zeros((r, r), bool)
    for (kind, k), on in keep.items():
      if on:
        road[(seg_v if kind == "v" else seg_h)[k]] = True
    # Bridges: some road lines stay over a river; the rest stop at the shore.
    bridges = np.zeros((r, r), bool)
    if water.any():
      for x in xs:
        if rng.random() < 0.5:
          bridges[:, x : x + rw] = True
      for y in ys:
        if rng.random() < 0.5:
          bridges[y : y + rw, :] = True
      # The coast (water touching two map edges' worth) gets no bridges.
      if water.sum() > 0.2 * r * r:
        bridges[:] = False
      road &= ~water | bridges
      lab, n = ndimage.label(road, _FOUR)
      if n > 1:
        sizes = ndimage.sum_labels(road, lab, np.arange(1, n + 1))
        road = lab == (1 + int(np.argmax(sizes)))
    return road, bridges

  @staticmethod
  def _connected(keep, xs, ys):
    """Whether the kept segments still join every intersection into one net."""
    nx, ny = len(xs), len(ys)
    parent = {}

    def find(a):
      while parent.setdefault(a, a) != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
      return a

    nodes = set()
    for (kind, k), on in keep.items():
      if kind == "v":
        i, j = k  # between row boundary j and j+1: nodes (i, j-1)-(i, j) in ys index
        a, b = ("n", i, j - 1), ("n", i, j)
      else:
        j, i = k
        a, b = ("n", i - 1, j), ("n", i, j)
      a = a if 0 <= a[1] < nx and 0 <= a[2] < ny else ("end", kind, k, 0)
      b = b if 0 <= b[1] < nx and 0 <= b[2] < ny else ("end", kind, k, 1)
      nodes.update([a, b])
      if on:
        parent[find(a)] = find(b)
    inner = [n for n in nodes if n[0] == "n"]
    return len({find(n) for n in inner}) <= 1

  def _blocks(self, rng, r, u, labels, height, road, water):
    free = ~road & ~water
    lab, n = ndimage.label(free, _FOUR)
    if n == 0:
      return
    objs = ndimage.find_objects(lab)
    cy, cx = rng.uniform(0.2, 0.8, size=2) * r
    sigma = rng.uniform(0.25, 0.5) * r
    near_water = ndimage.binary_dilation(water, _FOUR) if water.any() else np.zeros_like(water)
    road_ring = ndimage.binary_dilation(road, _FOUR)
    dmin, dmax = max(2, int(round(3 * u))), max(3, int(round(6 * u)))
    wmin, wmax = max(2, int(round(3 * u))), max(3, int(round(9 * u)))
    for b, sl in enumerate(objs, start=1):
      if sl is None:
        continue
      mask = lab[sl] == b
      y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
      roll = rng.random()
      if roll < 0.15 or mask.sum() < 4:
        self._park(rng, labels, height, sl, mask)
        continue
      if roll < 0.2:
        continue  # plaza: open ground
      rects = []
      d = int(rng.integers(dmin, dmax + 1))
      for edge in ("top", "bottom", "left", "right"):
        along = (x0, x1) if edge in ("top", "bottom") else (y0 + d, y1 - d)
        p = along[0]
        while p < along[1] - 1:
          w = int(rng.integers(wmin, wmax + 1))
          q = min(p + w, along[1])
          if edge == "top":
            rect = (y0, min(y0 + d, y1), p, q)
          elif edge == "bottom":
            rect = (max(y1 - d, y0), y1, p, q)
          elif edge == "left":
            rect = (p, q, x0, min(x0 + d, x1))
          else:
            rect = (p, q, max(x1 - d, x0), x1)
          rects.append(rect)
          p = q + int(rng.integers(0, 2))
      for ry0, ry1, rx0, rx1 in rects:
        if ry1 - ry0 < 1 or rx1 - rx0 < 1:
          continue
        cell = (slice(ry0, ry1), slice(rx0, rx1))
        if not (lab[cell] == b).all() or near_water[cell].any():
          continue
        if not road_ring[cell].any():
          continue
        if (labels[cell] == BUILDING).any():
          continue
        dist2 = ((ry0 + ry1) / 2 - cy) ** 2 + ((rx0 + rx1) / 2 - cx) ** 2
        h = BUILDING_MIN_HEIGHT + 0.05 + 0.6 * np.exp(-dist2 / (2 * sigma**2)) * rng.uniform(0.4, 1.0)
        h += rng.uniform(0, 0.1)
        labels[cell] = BUILDING
        height[cell] = min(h, 1.0)

  def _park(self, rng, labels, height, sl, mask):
    labels[sl][mask] = PARK
    ph, pw = mask.shape
    trees = rng.random((ph, pw)) < 0.18
    trees = ndimage.binary_dilation(trees, _FOUR) & mask
    sub = height[sl]
    sub[mask] = 0.04
    sub[trees] = 0.04 + rng.uniform(0.03, 0.12, size=int(trees.sum())).astype(np.float32)

  def _render(self, rng, r, u, labels, height):
    colours = self.palette.astype(np.float32) / 255.0
    jitter = rng.normal(0, 0.03, size=colours.shape).astype(np.float32)
    rgb = np.clip(colours + jitter, 0, 1)[labels]
    noise = render.value_noise(rng, r, max(2, int(4 * u)))
    grain = rng.normal(0, 0.025, size=(r, r)).astype(np.float32)
    rgb *= (0.9 + 0.2 * noise + grain)[..., None]
    # Roofs: each building gets its own tint, keyed by its height value.
    bld = labels == BUILDING
    if bld.any():
      tint = np.sin(height * 97.0)[..., None] * np.array([0.12, 0.06, 0.1], np.float32)
      rgb[bld] = np.clip(rgb[bld] + tint[bld], 0, 1)
    # Water ripples, tree canopies darker, road centre lines where roads are wide.
    wat = labels == WATER
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float32)
    ripple = 0.06 * np.sin((xx + 0.5 * yy) * (1.7 / max(u, 0.5)) + 6 * noise)
    rgb[wat] = np.clip(rgb[wat] * (1 + ripple[wat, None]), 0, 1)
    canopy = (labels == PARK) & (height > 0.06)
    rgb[canopy] *= np.array([0.55, 0.75, 0.5], np.float32)
    shaded = render.shade(rgb, height, relief=6.0 * u, shadow_len=max(1, int(round(3 * u))))
    return (shaded * 255.0 + 0.5).astype(np.uint8)

  # ------------------------------------------------------------------ judge
  def validity(self, labels: np.ndarray, height: np.ndarray | None = None) -> dict[str, bool]:
    """Checks the world's rules on one scene.

    Args:
      labels: [h, w] class ids.
      height: optional [h, w] heights in [0, 1]; without it
        ``heights_consistent`` is not checked (reported True).

    Returns:
      rule name -> whether the scene satisfies it.
    """
    tol = TOLERANCE
    road, bld, wat = labels == ROAD, labels == BUILDING, labels == WATER
    n_px = labels.size
    n_road, n_bld = int(road.sum()), int(bld.sum())
    out = {}
    if n_road:
      lab, n = ndimage.label(road, _FOUR)
      largest = ndimage.sum_labels(road, lab, np.arange(1, n + 1)).max()
      out["road_connected"] = bool(largest >= (1 - tol) * n_road)
    else:
      out["road_connected"] = False
    if n_bld:
      lab, n = ndimage.label(bld, _FOUR)
      ring = ndimage.binary_dilation(road, _FOUR)
      touching = np.unique(lab[ring & bld])
      touching_px = np.isin(lab, touching[touching > 0]).sum()
      out["buildings_touch_road"] = bool(touching_px >= (1 - tol) * n_bld)
      wet = ndimage.binary_dilation(wat, _FOUR) & bld
      out["nothing_built_on_water"] = bool(wet.sum() <= tol * n_bld)
    else:
      out["buildings_touch_road"] = True
      out["nothing_built_on_water"] = True
    out["heights_consistent"] = heights_consistent(bld, height, tol)
    out["plausible_layout"] = bool(0.05 <= n_road / n_px <= 0.6 and wat.sum() / n_px <= 0.6)
    return out

  def settle_edit(self, labels: np.ndarray, height: np.ndarray, editable: np.ndarray) -> None:
    """An edit keeps ``nothing_built_on_water``: edited pixels where water meets a building become ground (in place).

    A lake painted against a house gets a one-pixel bank inside the mask, a
    house painted against water steps back by one; pixels outside
    ``editable`` never change.
    """
    wat, bld = labels == WATER, labels == BUILDING
    clash = editable & ((wat & ndimage.binary_dilation(bld, _FOUR)) | (bld & ndimage.binary_dilation(wat, _FOUR)))
    if clash.any():
      ground = (labels == GROUND) & ~editable
      labels[clash] = GROUND
      height[clash] = float(np.median(height[ground])) if ground.any() else 0.03

  def statistics(self, labels: np.ndarray, height: np.ndarray | None = None) -> np.ndarray:
    """Summary statistics of one scene, in the order of ``stat_names``."""
    n_px = labels.size
    fracs = np.bincount(labels.ravel(), minlength=5)[:5] / n_px
    bld = labels == BUILDING
    lab, n = ndimage.label(bld, _FOUR)
    per_k = n / n_px * 1000.0
    mean_px = bld.sum() / max(n, 1) / n_px * 100.0
    if height is not None and bld.any():
      hb = height[bld]
      mh, sh = float(hb.mean()), float(hb.std())
    else:
      mh, sh = 0.0, 0.0
    road = labels == ROAD
    edges = (road[1:, :] != road[:-1, :]).sum() + (road[:, 1:] != road[:, :-1]).sum()
    return np.array([*fracs, per_k, mean_px, mh, sh, edges / n_px], np.float32)
