"""A folder of scenes in sibling layers: ``DIR/rgb/NAME.png``, ``DIR/height/NAME.*``, ``DIR/labels/NAME.png``.

The user's own structured data (``data.source='folder'`` with
``data.channels=('rgb', 'height')``, ``('rgb', 'labels')``, ``('rgb',
'labels', 'height')``, or ``'gray'`` first): one subfolder per layer, files
matched by NAME (the file name without extension), any subset of layers on
disk, the layers ``data.channels`` names read.

* ``rgb/`` (or ``gray/``): PNG/JPEG images, as a flat folder's.
* ``height/``: 8- or 16-bit gray PNG (0 = lowest, full scale = highest) or
  ``.npy`` float heights in metres. Metres are mapped to [0, 1] by the
  range of the whole folder (both splits), which the source reports
  (``height_range_m``) so exports can carry it.
* ``labels/``: index PNGs (8-bit gray or palette mode: the value is the
  class), or RGB PNGs in the colours of ``DIR/classes.json``;
  ``classes.json`` names the classes: ``{"classes": [{"name": "water",
  "colour": [60, 110, 190]}, ...]}`` (class i is entry i).

Every layer of a scene is resized (shorter side to ``data.image_size``) and
centre-cropped the same way: colours by Lanczos, heights bilinearly as
floats, labels by nearest neighbour. The held-out split is by a hash of
NAME, so a scene's layers are always in the same split.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
from PIL import Image

LAYERS = ("rgb", "gray", "height", "labels")
HEIGHT_EXTENSIONS = (".png", ".npy", ".tif", ".tiff")
LABEL_EXTENSIONS = (".png",)


def layers_on_disk(root: str) -> dict[str, dict[str, str]]:
  """{layer: {NAME: file}} for the layer subfolders of ``root`` ({} when it is not a layered folder)."""
  from genenv_jax.data.sources import IMAGE_EXTENSIONS

  exts = {"rgb": IMAGE_EXTENSIONS, "gray": IMAGE_EXTENSIONS, "height": HEIGHT_EXTENSIONS, "labels": LABEL_EXTENSIONS}
  out = {}
  for layer in LAYERS:
    d = os.path.join(root, layer)
    if os.path.isdir(d):
      files = {}
      for f in sorted(os.listdir(d)):
        stem, ext = os.path.splitext(f)
        if ext.lower() in exts[layer]:
          files[stem] = os.path.join(d, f)
      out[layer] = files
  return out if ("height" in out or "labels" in out) else {}


def describe(found: dict) -> str:
  return ", ".join(f"{k}/ ({len(v)} files)" for k, v in found.items())


def read_classes(root: str) -> tuple[tuple[str, ...], np.ndarray]:
  """(names, palette [k, 3] uint8) from ``root/classes.json``."""
  path = os.path.join(root, "classes.json")
  if not os.path.isfile(path):
    raise ValueError(
      f"data.path={root!r}: has a labels/ layer but no classes.json; write "
      '{"classes": [{"name": "water", "colour": [60, 110, 190]}, ...]} (class i is entry i)'
    )
  try:
    with open(path) as f:
      entries = json.load(f)["classes"]
    names = tuple(str(e["name"]) for e in entries)
    palette = np.array([[int(c) for c in e["colour"]] for e in entries], np.int64)
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(
      f"{path!r}: cannot read it ({type(e).__name__}: {e}); expected "
      '{"classes": [{"name": "water", "colour": [60, 110, 190]}, ...]}'
    ) from None
  if not 2 <= len(names) <= 255 or palette.shape != (len(names), 3) or palette.min() < 0 or palette.max() > 255:
    raise ValueError(f"{path!r}: needs 2 to 255 classes, each with a name and an RGB colour in 0..255")
  return names, palette.astype(np.uint8)


def _crop_box(w: int, h: int, size: int):
  scale = size / min(w, h)
  nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
  left, top = (nw - size) // 2, (nh - size) // 2
  return (nw, nh), (left, top, left + size, top + size)


def read_height(path: str, pixel_sizes: list | None = None) -> tuple[np.ndarray, str]:
  """(float heights [h, w], unit): 'metres' for .npy/.tif, 'fraction' for PNGs scaled to [0, 1].

  Metres are read as ``sample.py --heightmap`` reads them (``exports.heightfile``: a GeoTIFF's nodata
  pixels filled with its lowest height, its pixel size appended to ``pixel_sizes``).
  """
  if path.lower().endswith((".npy", ".tif", ".tiff")):
    from genenv_jax.exports import heightfile

    a, mpp, note = heightfile.read_heights(path)
    if note:
      logging.info("%s: %s", path, note)
    if mpp is not None and pixel_sizes is not None:
      pixel_sizes.append(mpp)
    return a, "metres"
  with Image.open(path) as img:
    img.load()
    a = np.asarray(img)
    if a.ndim == 3:
      a = a[..., 0]
    top = 255.0 if a.dtype == np.uint8 else 65535.0
    return a.astype(np.float64) / top, "fraction"


def read_labels(path: str, palette: np.ndarray) -> np.ndarray:
  with Image.open(path) as img:
    img.load()
    if img.mode in ("P", "L"):
      idx = np.asarray(img).astype(np.int64)
    elif img.mode in ("RGB", "RGBA"):
      rgb = np.asarray(img.convert("RGB")).astype(np.int64)
      match = (rgb[:, :, None, :] == palette[None, None].astype(np.int64)).all(-1)
      if not match.any(-1).all():
        ys, xs = np.nonzero(~match.any(-1))
        raise ValueError(
          f"{path!r}: colour {tuple(int(v) for v in rgb[ys[0], xs[0]])} at row {ys[0]}, column {xs[0]} is not "
          "in classes.json"
        )
      idx = match.argmax(-1)
    else:
      raise ValueError(f"{path!r}: labels must be an index PNG (8-bit gray or palette) or RGB; got mode {img.mode}")
  if idx.max() >= len(palette):
    raise ValueError(f"{path!r}: class index {int(idx.max())}; classes.json has {len(palette)} classes (0..)")
  return idx.astype(np.uint8)


class LayeredFolder:
  """The scenes of a layered folder for the layers ``channels`` names, both splits' names and height range."""

  def __init__(self, root: str, channels, found: dict):
    self.root = root
    want = list(channels)
    image = channels[0]
    if image not in found:
      raise ValueError(
        f"data.path={root!r}: data.channels={tuple(channels)} needs a {image}/ layer; found {describe(found)}"
      )
    missing = [c for c in want if c not in found]
    if missing:
      raise ValueError(
        f"data.path={root!r}: data.channels={tuple(channels)} needs the layer(s) {missing}; found {describe(found)}"
      )
    names = set(found[image])
    for c in want[1:]:
      names &= set(found[c])
    dropped = len(set(found[image])) - len(names)
    if dropped:
      logging.warning("data.path=%r: %d scenes lack one of the layers %s and are left out", root, dropped, want)
    if not names:
      raise ValueError(f"data.path={root!r}: no NAME is present in every layer of {want}; found {describe(found)}")
    self.names = sorted(names)
    self.files = {c: found[c] for c in want}
    self.channels = tuple(channels)
    self.class_names, self.palette = read_classes(root) if "labels" in want else ((), None)
    self.height_range_m = None
    self.metres_per_pixel = None  # from GeoTIFF pixel sizes, when they agree
    if "height" in want:
      units, lo, hi, sizes = set(), np.inf, -np.inf, []
      for n in self.names:
        a, unit = read_height(self.files["height"][n], sizes)
        units.add(unit)
        lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
      if len(units) > 1:
        raise ValueError(f"data.path={root!r}: height/ mixes PNG and metre (.npy/.tif) files; use one kind")
      self.height_unit = units.pop()
      if self.height_unit == "metres":
        self.height_range_m = (lo, hi if hi > lo else lo + 1.0)
      if sizes and np.allclose(sizes, sizes[0]):
        self.metres_per_pixel = float(sizes[0])
    logging.info("data.path=%r: layers %s; %d scenes", root, describe(found), len(self.names))

  def read(self, name: str, size: int) -> dict[str, np.ndarray]:
    """One scene's records at ``size`` px: uint8 ``image`` (and uint8 ``labels``, uint16 ``height``)."""
    from genenv_jax.data import sources

    image = self.channels[0]
    with Image.open(self.files[image][name]) as img:
      img.load()
      w, h = img.size
      out = {"image": sources.to_gray_square(img, size) if image == "gray" else sources.to_rgb_square(img, size)}
    (nw, nh), box = _crop_box(w, h, size)
    if "height" in self.files:
      a, unit = read_height(self.files["height"][name])
      if unit == "metres":
        lo, hi = self.height_range_m
        a = (a - lo) / (hi - lo)
      self._same_size(name, "height", a.shape, (h, w))
      f = Image.fromarray(a.astype(np.float32), "F").resize((nw, nh), Image.Resampling.BILINEAR).crop(box)
      out["height"] = np.clip(np.round(np.asarray(f) * 65535.0), 0, 65535).astype(np.uint16)  # 16-bit records
    if "labels" in self.files:
      idx = read_labels(self.files["labels"][name], self.palette)
      self._same_size(name, "labels", idx.shape, (h, w))
      lab = Image.fromarray(idx, "L").resize((nw, nh), Image.Resampling.NEAREST).crop(box)
      out["labels"] = np.asarray(lab, np.uint8)
    return out

  def _same_size(self, name, layer, shape, want):
    if tuple(shape) != tuple(want):
      raise ValueError(
        f"data.path={self.root!r}: scene {name!r}: {layer}/ is {shape[1]}x{shape[0]} px and {self.channels[0]}/ is "
        f"{want[1]}x{want[0]}; a scene's layers must be the same size"
      )
