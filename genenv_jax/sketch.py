"""Hand-drawn coarse maps for hierarchical models: ``sample.py --sketch=FILE.png --sketch_strength=S``.

A sketch is painted at 1/factor of the scene (one sketch pixel per
``factor x factor`` scene pixels; ``factor`` is the model's ``hier.factor``):

* an RGB(A) PNG whose colours are the world's palette (``python -m
  genenv_jax.scenes`` lists them; ``Sketch.palette_help`` names them): each
  pixel paints its class, held in the coarse level's label channels;
* a gray PNG (8 or 16 bits): a height sketch, black lowest, white highest,
  held in the coarse level's height channel.

``canvas.render_hier`` holds what the sketch paints on the coarse ODE's
straight path up to time ``1 - strength``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image


@dataclasses.dataclass
class Sketch:
  path: str
  known: np.ndarray  # [h, w, C] coarse model tensor the sketch paints
  keep: np.ndarray  # [h, w, C] 1 where the sketch holds a value
  kind: str  # 'labels' | 'height'

  def check_scene(self, height: int, width: int, factor: int) -> None:
    """Refuses a sketch whose size is not the scene's at 1/factor."""
    h, w = self.known.shape[:2]
    if height % factor or width % factor or (h, w) != (height // factor, width // factor):
      want = f"{width // factor}x{height // factor}" if not (height % factor or width % factor) else "(none)"
      raise ValueError(
        f"--sketch={self.path!r}: {w}x{h} px (width x height); a sketch for --scene_size={height}x{width} is "
        f"{want} px, one sketch pixel per {factor}x{factor} scene pixels (the scene size must be a multiple of "
        f"{factor})"
      )


def palette_help(layout) -> str:
  return ", ".join(f"{n} {tuple(int(v) for v in c)}" for n, c in zip(layout.class_names, layout.palette))


def load(path: str, layout) -> Sketch:
  """Reads a sketch for a model with ``layout``; one line naming what is allowed when it cannot be used."""
  try:
    with Image.open(path) as im:
      im.load()
      img = im.copy()
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError(f"--sketch={path!r}: cannot read it as an image ({e}); give a PNG") from None
  C = layout.num_channels
  sl = layout.slices()
  h, w = img.height, img.width
  known = np.zeros((h, w, C), np.float32)
  keep = np.zeros_like(known)
  gray = img.mode in ("L", "I", "I;16", "I;16B", "I;16L") or (
    img.mode in ("RGB", "RGBA") and _is_gray(np.asarray(img.convert("RGB"))) and not _in_palette(img, layout)
  )
  if gray:
    if "height" not in sl:
      raise ValueError(
        f"--sketch={path!r}: a gray (height) sketch, and this model has no height channel; paint classes in the "
        f"world's palette: {palette_help(layout)}"
      )
    a = np.asarray(img)
    if a.ndim == 3:
      a = a[..., 0]
    top = 65535.0 if (a.dtype != np.uint8 and a.max() > 255) else 255.0
    known[..., sl["height"]] = (a.astype(np.float32) / top * 2.0 - 1.0)[..., None]
    keep[..., sl["height"]] = 1.0
    return Sketch(path, known, keep, "height")
  if "labels" not in sl:
    raise ValueError(
      f"--sketch={path!r}: a colour sketch, and this model has no label channels; paint a gray (8- or 16-bit) "
      "height sketch"
    )
  if img.mode == "RGBA" and np.asarray(img)[..., 3].min() < 255:
    raise ValueError(f"--sketch={path!r}: has transparent pixels; paint every pixel in the world's palette")
  rgb = np.asarray(img.convert("RGB")).astype(np.int32)
  pal = np.asarray(layout.palette, np.int32)
  match = (rgb[:, :, None, :] == pal[None, None]).all(-1)  # [h, w, K]
  bad = ~match.any(-1)
  if bad.any():
    ys, xs = np.nonzero(bad)
    cols = sorted({tuple(int(v) for v in rgb[y, x]) for y, x in zip(ys[:1000], xs[:1000])})[:5]
    raise ValueError(
      f"--sketch={path!r}: {int(bad.sum())} pixels have colours outside the world's palette (e.g. {cols}, first at "
      f"row {ys[0]}, column {xs[0]}); allowed: {palette_help(layout)}"
    )
  return from_classes(match.argmax(-1), layout, path)


FREE = 255  # a class-index sketch's value where it paints nothing (the server's partial sketches)


def from_classes(idx: np.ndarray, layout, path: str = "") -> Sketch:
  """A sketch from class indices [h, w] (``FREE``: not painted, the model draws there)."""
  C, sl = layout.num_channels, layout.slices()
  n = len(layout.class_names)
  known = np.zeros((*idx.shape, C), np.float32)
  keep = np.zeros_like(known)
  on = idx != FREE
  known[on, sl["labels"]] = np.eye(n, dtype=np.float32)[idx[on]] * 2.0 - 1.0
  keep[on, sl["labels"]] = 1.0
  return Sketch(path, known, keep, "labels")


def _is_gray(rgb: np.ndarray) -> bool:
  return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _in_palette(img, layout) -> bool:
  if not len(layout.class_names):
    return False
  rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
  pal = {tuple(int(v) for v in c) for c in layout.palette}
  return all(tuple(int(v) for v in c) in pal for c in np.unique(rgb, axis=0))
