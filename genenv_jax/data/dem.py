"""One large elevation model (a DEM) cut into training windows: ``data.path=FILE.tif|.npy|.png``.

``data.source='folder'`` with ``data.path`` naming one heightmap file (a
GeoTIFF, a ``.npy`` of metres or a 16-bit PNG of whole metres, read as
``sample.py --heightmap`` reads them: nodata filled, pixel size kept) and
``data.channels=('height',)``. The source cuts it into square windows of
``data.window`` px (0: ``data.image_size``) every ``data.stride`` px (0: a
quarter window); a window larger than the model is averaged down to
``data.image_size`` (whole factors) or resized bilinearly.

The held-out split is a region, not a hash: the last ``data.test_fraction``
of the DEM's columns (at least one window wide) are the test region, and a
window belongs to a split only when it lies wholly inside that split's
region, so no test window shares a pixel with a training window.

Heights keep metres: [0, 1] in the model is the whole file's lowest to
highest height (``height_range_m``), at ``metres_per_pixel`` (the file's
pixel size, or ``data.metres_per_pixel``, times the window's downsampling).
Records hold 16-bit heights.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PIL import Image

from genenv_jax.exports import heightfile


def is_elevation_file(path: str) -> bool:
  p = os.path.expanduser(path)
  return os.path.isfile(p) and os.path.splitext(p)[1].lower() in heightfile.READERS


def geometry(data_cfg) -> tuple[int, int]:
  """(window, stride) in DEM pixels, with the defaults filled in."""
  size = int(data_cfg.image_size)
  window = int(data_cfg.get("window", 0) or size)
  stride = int(data_cfg.get("stride", 0) or max(1, window // 4))
  return window, stride


def check(data_cfg) -> None:
  """Config checks that need no file read."""
  for key in ("window", "stride"):
    v = data_cfg.get(key, 0)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
      raise ValueError(f"data.{key}={v!r}: must be a whole number of DEM pixels >= 0 (0: the default)")
  window, _ = geometry(data_cfg)
  if window < data_cfg.image_size:
    raise ValueError(
      f"data.window={window}: must be at least data.image_size={data_cfg.image_size} (windows are averaged down "
      "to the model's size, never blown up)"
    )
  if tuple(data_cfg.channels) != ("height",):
    raise ValueError(
      f"data.channels={tuple(data_cfg.channels)}: data.path={data_cfg.path!r} is one elevation model, which holds "
      "heights only; use data.channels=\"('height',)\" (or a layered folder, DIR/rgb + DIR/height, for images too)"
    )


def _columns(width: int, window: int, stride: int, test_fraction: float) -> tuple[list[int], list[int]]:
  """(train, test) window left edges: the test region is the last columns, at least one window wide."""
  test_w = max(window, int(np.ceil(test_fraction * width)))
  cut = width - test_w
  if cut < window:
    raise ValueError(
      f"the DEM is {width} px wide: too narrow for a {window}-px training window beside a {test_w}-px test region"
    )
  return list(range(0, cut - window + 1, stride)), list(range(cut, width - window + 1, stride))


class DemSource:
  """One split of a DEM's windows (``has_structure``: heights), held in memory as 16-bit records."""

  has_structure = True

  def __init__(self, data_cfg, split: str):
    check(data_cfg)
    path = data_cfg.path
    h, file_mpp, note = heightfile.read_heights(path)
    window, stride = geometry(data_cfg)
    size = int(data_cfg.image_size)
    frac = float(data_cfg.get("test_fraction", 0.1))
    if data_cfg.get("test_path", ""):
      raise ValueError(
        f"data.test_path={data_cfg.test_path!r}: a DEM's held-out split is its own last columns "
        "(data.test_fraction); give one file"
      )
    if h.shape[0] < window:
      raise ValueError(f"data.path={path!r}: the DEM is {h.shape[0]} px high, less than data.window={window}")
    train_x, test_x = _columns(h.shape[1], window, stride, frac)
    rows = list(range(0, h.shape[0] - window + 1, stride))
    lo, hi = float(h.min()), float(h.max())
    self.height_range_m = (lo, hi if hi > lo else lo + 1.0)
    mpp = float(data_cfg.get("metres_per_pixel", 0.0) or file_mpp or 0.0)
    self.metres_per_pixel = mpp * window / size if mpp else None
    if not mpp and split == "train":
      logging.warning(
        "data.path=%r: the file does not give its ground resolution (a .npy or PNG, or a GeoTIFF without "
        "ModelPixelScaleTag); exports of this model will say 1 m per pixel: set --config.data.metres_per_pixel=M",
        path,
      )
    unit = (h - lo) / (self.height_range_m[1] - lo)
    xs = train_x if split == "train" else test_x
    windows = [unit[y : y + window, x : x + window] for y in rows for x in xs]
    self._height = np.stack([_to_records(w, size) for w in windows])
    self.class_names, self.num_classes = (), 1
    self.label_classes, self.palette = (), None
    cut = test_x[0] if test_x else h.shape[1] - window
    where = f"the last {h.shape[1] - cut} columns" if split == "test" else f"the first {cut} columns"
    self.description = (
      f"data.path={path!r} ({h.shape[0]}x{h.shape[1]} px, {lo:.1f}-{hi:.1f} m): {len(windows)} windows of "
      f"{window} px every {stride} px in {where}" + (f"; {note}" if note else "")
    )

  def __len__(self):
    return len(self._height)

  def get(self, indices):
    idx = np.asarray(indices, np.int64)
    return {"height": self._height[idx], "label": np.zeros((len(idx),), np.int32)}


def _to_records(w: np.ndarray, size: int) -> np.ndarray:
  """A window of heights in [0, 1] at ``size`` px as uint16 (block means for whole factors)."""
  n = w.shape[0]
  if n != size:
    if n % size == 0:
      f = n // size
      w = w.reshape(size, f, size, f).mean(axis=(1, 3))
    else:
      w = np.asarray(Image.fromarray(w.astype(np.float32), "F").resize((size, size), Image.Resampling.BILINEAR))
  return np.clip(np.round(w * 65535.0), 0, 65535).astype(np.uint16)
