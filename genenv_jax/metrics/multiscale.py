"""Large structures of whole scenes: what a crop-sized metric cannot see (``eval.py --scene_size``).

A model that only ever sees a training-size window can tile a 1024-px scene
whose every crop looks right while nothing larger than the window exists:
no large lake, no avenue, no mountain range, no valley network. These
statistics read the whole label and height maps:

* water bodies (the world's ``water`` class, 4-connected): count per
  megapixel, the largest body's share of the scene, and the distribution of
  log10 areas (compared as a Wasserstein distance). Where the world has
  roads, a road pixel with water on both sides across it (within
  ``BRIDGE`` px, left and right or above and below) is a bridge and counts
  as water: the city's avenues cross lakes and rivers as ``road`` in the
  label map, and without this every real lake is cut into block-wide
  strips;
* the road network (``road``): the largest connected component's share of
  the road pixels, and the share of road pixels in wide roads (road that
  survives a 3x3 erosion);
* patches of every label class (biomes on terrain): the distribution of
  log10 patch areas;
* heights: the slope of the radially averaged power spectrum (log-log) and
  the spectrum itself (compared as the mean |log10 ratio| to real's), the
  mean slope in height units per pixel, and drainage: the share of pixels
  whose steepest-descent path (D8) reaches the scene's border rather than a
  pit, and the longest flow path as a share of the scene's side.

``compare(real, other)`` turns per-scene values into distances from the
real set; called with two disjoint real sets it gives the real-vs-real
spread every model row is read against.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats

_FOUR = ndimage.generate_binary_structure(2, 1)
BRIDGE = 4  # longest road crossing (px) read as a bridge: the city's avenues are 2 px wide
SCALARS = (
  "water_bodies_per_mpx",
  "largest_water_share",
  "road_largest_share",
  "road_wide_share",
  "spectrum_slope",
  "mean_slope",
  "drains_to_border",
  "longest_flow_path",
)


def component_sizes(mask: np.ndarray) -> np.ndarray:
  """The pixel counts of ``mask``'s 4-connected components (empty where it has none)."""
  comp, k = ndimage.label(mask, _FOUR)
  return np.bincount(comp.ravel())[1:] if k else np.zeros(0, np.int64)


def _near(mask: np.ndarray, axis: int, d: int, sign: int) -> np.ndarray:
  """Pixels with a ``mask`` pixel 1..d steps away along ``axis`` (sign +1: higher indices)."""
  out = np.zeros_like(mask)
  n = mask.shape[axis]
  for k in range(1, min(d, n - 1) + 1):
    src = [slice(None)] * 2
    dst = [slice(None)] * 2
    if sign > 0:
      dst[axis], src[axis] = slice(0, n - k), slice(k, n)
    else:
      dst[axis], src[axis] = slice(k, n), slice(0, n - k)
    out[tuple(dst)] |= mask[tuple(src)]
  return out


def bridged_water(water: np.ndarray, road: np.ndarray | None, d: int = BRIDGE) -> np.ndarray:
  """``water`` plus the road pixels that cross it: water (or bridge) within ``d`` px on both sides, either axis."""
  if road is None or not road.any():
    return water
  for _ in range(3):  # again over the bridged water: where two bridges cross, each is the other's shore
    across = (_near(water, 1, d, -1) & _near(water, 1, d, +1)) | (_near(water, 0, d, -1) & _near(water, 0, d, +1))
    grown = water | (road & across)
    if (grown == water).all():
      break
    water = grown
  return water


def radial_spectrum(h: np.ndarray, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
  """(frequencies, power) of the radially averaged power spectrum of a height map, log-spaced bins."""
  h = np.asarray(h, np.float64)
  h = h - h.mean()
  n0, n1 = h.shape
  win = np.outer(np.hanning(n0), np.hanning(n1))  # no edge leakage from the non-periodic scene
  p = np.abs(np.fft.fft2(h * win)) ** 2
  fy, fx = np.fft.fftfreq(n0)[:, None], np.fft.fftfreq(n1)[None, :]
  f = np.hypot(fy, fx)
  edges = np.logspace(np.log10(1.0 / max(n0, n1)), np.log10(0.5), bins + 1)
  idx = np.digitize(f.ravel(), edges) - 1
  ok = (idx >= 0) & (idx < bins)
  count = np.bincount(idx[ok], minlength=bins)
  power = np.bincount(idx[ok], p.ravel()[ok], bins) / np.maximum(count, 1)
  freq = np.sqrt(edges[:-1] * edges[1:])
  full = count > 0  # the lowest bins of a small scene hold no frequency
  return freq[full], power[full] + 1e-20


def drainage(h: np.ndarray) -> tuple[float, float]:
  """(share of pixels draining to the border, longest flow path / side) by D8 steepest descent.

  Each pixel flows to its lowest 8-neighbour when that is lower than itself
  (a pit otherwise); a path ends at a pit or leaves through the border.
  Paths are followed by pointer doubling, so the cost is log(length) passes.
  """
  h = np.asarray(h, np.float64)
  n0, n1 = h.shape
  pad = np.pad(h, 1, constant_values=-np.inf)  # outside the scene: lower than anything (an outlet)
  best = np.full(h.shape, np.inf)
  target = np.arange(h.size).reshape(h.shape)  # flat index of where each pixel flows (itself: a pit)
  outside = h.size  # the border outlet
  rows, cols = np.mgrid[0:n0, 0:n1]
  for dy in (-1, 0, 1):
    for dx in (-1, 0, 1):
      if dy == dx == 0:
        continue
      nb = pad[1 + dy : 1 + dy + n0, 1 + dx : 1 + dx + n1]
      drop = (h - nb) / np.hypot(dy, dx)
      better = (nb < h) & (-drop < best)
      best = np.where(better, -drop, best)
      ry, rx = rows + dy, cols + dx
      inside = (ry >= 0) & (ry < n0) & (rx >= 0) & (rx < n1)
      target = np.where(better, np.where(inside, ry.clip(0, n0 - 1) * n1 + rx.clip(0, n1 - 1), outside), target)
  nxt = np.append(target.ravel(), outside)
  steps = np.append((target.ravel() != np.arange(h.size)).astype(np.int64), 0)
  for _ in range(int(np.ceil(np.log2(h.size + 1))) + 1):
    steps = steps + steps[nxt]
    nxt = nxt[nxt]
  end = nxt[:-1]
  return float((end == outside).mean()), float(steps[:-1].max() / max(n0, n1))


def scene_statistics(labels: np.ndarray, height: np.ndarray | None, class_names) -> dict:
  """Per-scene values: the scalars (``SCALARS``; NaN where the scene has no such class or no heights) and
  the lists of log10 areas of water bodies and of every class's patches."""
  n = labels.size
  out = {k: float("nan") for k in SCALARS}
  out["water_log_areas"], out["patch_log_areas"] = np.zeros(0), np.zeros(0)
  if "water" in class_names:
    road = labels == class_names.index("road") if "road" in class_names else None
    sizes = component_sizes(bridged_water(labels == class_names.index("water"), road))
    out["water_bodies_per_mpx"] = len(sizes) / n * 1e6
    out["largest_water_share"] = float(sizes.max() / n) if len(sizes) else 0.0
    out["water_log_areas"] = np.log10(sizes) if len(sizes) else np.zeros(0)
  if "road" in class_names:
    road = labels == class_names.index("road")
    sizes = component_sizes(road)
    out["road_largest_share"] = float(sizes.max() / road.sum()) if len(sizes) else 0.0
    wide = ndimage.binary_dilation(ndimage.binary_erosion(road, np.ones((3, 3))), np.ones((3, 3))) & road
    out["road_wide_share"] = float(wide.sum() / max(road.sum(), 1))
  out["patch_log_areas"] = np.concatenate(
    [np.log10(np.maximum(component_sizes(labels == c), 1)) for c in range(len(class_names))]
  )
  if height is not None:
    h = np.asarray(height, np.float64)
    f, p = radial_spectrum(h)
    out["spectrum"] = p
    out["spectrum_slope"] = float(np.polyfit(np.log10(f), np.log10(p), 1)[0])
    gy, gx = np.gradient(h)
    out["mean_slope"] = float(np.hypot(gy, gx).mean())
    out["drains_to_border"], out["longest_flow_path"] = drainage(h)
  return out


def compare(real: list[dict], other: list[dict]) -> dict:
  """Distances of ``other``'s per-scene statistics from ``real``'s (0 for the same set).

  Scalars: |mean difference| in the statistic's own units; distributions (water-body
  and patch log-areas): Wasserstein distance of the pooled values; the
  height spectrum: mean |log10 ratio| of the mean spectra. Keys are the
  statistic's name (the distance) and ``<name>/value`` (other's mean).
  """
  out = {}
  for k in SCALARS:
    a = np.array([r[k] for r in real], np.float64)
    b = np.array([o[k] for o in other], np.float64)
    if np.isnan(a).all() or np.isnan(b).all():
      continue
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    out[k] = float(abs(b.mean() - a.mean()))
    out[f"{k}/value"] = float(b.mean())
  for k in ("water_log_areas", "patch_log_areas"):
    a = np.concatenate([r[k] for r in real])
    b = np.concatenate([o[k] for o in other])
    if len(a) and len(b):
      out[f"{k}_w1"] = float(stats.wasserstein_distance(a, b))
    elif len(a) or len(b):
      out[f"{k}_w1"] = float(np.concatenate([a, b]).mean())  # one side has none at all: its mean size
  if "spectrum" in real[0] and "spectrum" in other[0]:
    pa = np.mean([r["spectrum"] for r in real], 0)
    pb = np.mean([o["spectrum"] for o in other], 0)
    out["spectrum_distance"] = float(np.abs(np.log10(pb / pa)).mean())
  return out


def jackknife(real: list[dict], other: list[dict]) -> dict:
  """How much ``compare``'s distances move with ``other``'s draw: for each distance, [min, max] over the sets
  that leave one of ``other``'s scenes out (``other`` needs 3 scenes or more). A figure whose range straddles
  a target is not met or missed by the model, only by the draw."""
  if len(other) < 3:
    raise ValueError(f"jackknife: {len(other)} scenes; need 3 or more to leave one out")
  runs = [compare(real, other[:i] + other[i + 1 :]) for i in range(len(other))]
  keys = [k for k in runs[0] if "/" not in k]
  return {k: [min(r[k] for r in runs), max(r[k] for r in runs)] for k in keys}


HEIGHT_KEYS = ("spectrum_slope", "mean_slope", "drains_to_border", "longest_flow_path", "spectrum_distance")


def height_sets(sets: dict[str, np.ndarray], real: str = "real") -> dict[str, dict]:
  """Terrain statistics of height maps ([n, h, w] in [0, 1] per set) against the ``real`` set: for every other
  set, its distances (``HEIGHT_KEYS``, from ``compare``). Any model with a height channel (``eval.py``)."""
  per = {
    k: [scene_statistics(np.zeros(h.shape, np.uint8), h, ("ground",)) for h in np.asarray(v, np.float64)]
    for k, v in sets.items()
  }
  return {
    k: {kk: vv for kk, vv in compare(per[real], v).items() if kk.split("/")[0] in HEIGHT_KEYS}
    for k, v in per.items()
    if k != real
  }


def downsample_rgb(rgb: np.ndarray, size: int = 32) -> np.ndarray:
  """[n, H, W, 3] uint8 whole scenes -> [n, size, size, 3] uint8 (block means when H and W divide; else resized)."""
  n, h, w = rgb.shape[:3]
  if h % size == 0 and w % size == 0:
    x = rgb.reshape(n, size, h // size, size, w // size, 3).astype(np.float64).mean((2, 4))
    return np.round(x).astype(np.uint8)
  from PIL import Image

  return np.stack([np.asarray(Image.fromarray(r).resize((size, size), Image.BOX)) for r in rgb])


def evaluate(labels: np.ndarray, height: np.ndarray | None, class_names) -> list[dict]:
  """``scene_statistics`` of each scene of a set ([n, H, W] labels, [n, H, W] heights or None)."""
  return [
    scene_statistics(labels[i], None if height is None else height[i], tuple(class_names)) for i in range(len(labels))
  ]
