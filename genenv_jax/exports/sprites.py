"""The 2D formats game engines take: parallax layers for side views, sprite sheets with a JSON atlas.

* ``layers``: a side-view scene split into PNGs with alpha, back to front
  (one per class, e.g. sky, hills, ground, trees), plus its depth map.
* ``sprites``: scenes as frames of one sheet, with the per-part label masks
  on a second sheet of the same layout, and an atlas in TexturePacker's JSON
  "hash" layout (what Phaser, Godot and Unity 2D importers read).
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

# Which classes make each parallax layer, back to front (by class name; a world's own names).
FOREST_LAYERS = (("sky", ("sky",)), ("hills", ("hills",)), ("ground", ("ground",)), ("trees", ("trunk", "foliage")))


def layers(scene, folder: str, name: str = "layer") -> list[str]:
  """``<name>_<i>_<part>.png`` RGBA layers back to front and ``depth.png`` (16-bit, 0 = near)."""
  if scene.labels is None:
    raise ValueError(f"layers: the scene has no label map (world {scene.world!r})")
  rgb, labels = np.asarray(scene.rgb), np.asarray(scene.labels)
  groups = FOREST_LAYERS if scene.world == "forest" else tuple((c, (c,)) for c in scene.class_names)
  paths = []
  for i, (part, classes) in enumerate(groups):
    ids = [scene.class_names.index(c) for c in classes if c in scene.class_names]
    alpha = np.isin(labels, ids).astype(np.uint8) * 255
    fname = f"{name}_{i}_{part}.png"
    Image.fromarray(np.concatenate([rgb, alpha[..., None]], -1), "RGBA").save(os.path.join(folder, fname))
    paths.append(fname)
  if scene.height is not None:
    depth = np.round(np.clip(np.asarray(scene.height, np.float64), 0, 1) * 65535).astype(np.uint16)
    Image.fromarray(depth.astype("<u2")).save(os.path.join(folder, "depth.png"))  # a 16-bit PNG
    paths.append("depth.png")
  with open(os.path.join(folder, "layers.json"), "w") as f:
    json.dump({"source": scene.source, "back_to_front": paths[: len(groups)], "depth": "depth.png"}, f, indent=1)
  return paths


def sheet_layout(n: int, cols: int | None = None) -> tuple[int, int]:
  cols = cols or int(np.ceil(np.sqrt(n)))
  return cols, -(-n // cols)


def sprites(frames_rgb, frames_labels, class_names, palette, folder: str, name: str = "sprites", background=0):
  """A sprite sheet: ``<name>.png`` (RGBA, background transparent), ``<name>_parts.png`` and ``<name>.json``.

  Args:
    frames_rgb: [n, s, s, 3] uint8 sprites.
    frames_labels: [n, s, s] uint8 part labels.
    class_names, palette: the parts and their colours.
    background: the class that is transparent.
  """
  n, s = len(frames_rgb), frames_rgb.shape[1]
  cols, rows = sheet_layout(n)
  sheet = np.zeros((rows * s, cols * s, 4), np.uint8)
  parts = np.zeros((rows * s, cols * s, 4), np.uint8)
  frames = {}
  for i in range(n):
    r, c = divmod(i, cols)
    y, x = r * s, c * s
    alpha = np.where(frames_labels[i] == background, 0, 255).astype(np.uint8)
    sheet[y : y + s, x : x + s] = np.concatenate([frames_rgb[i], alpha[..., None]], -1)
    parts[y : y + s, x : x + s] = np.concatenate([palette[frames_labels[i]], alpha[..., None]], -1)
    frames[f"{name}_{i:04d}"] = {
      "frame": {"x": x, "y": y, "w": s, "h": s},
      "rotated": False,
      "trimmed": False,
      "spriteSourceSize": {"x": 0, "y": 0, "w": s, "h": s},
      "sourceSize": {"w": s, "h": s},
    }
  Image.fromarray(sheet, "RGBA").save(os.path.join(folder, f"{name}.png"))
  Image.fromarray(parts, "RGBA").save(os.path.join(folder, f"{name}_parts.png"))
  atlas = {
    "frames": frames,
    "meta": {
      "app": "genenv_jax",
      "version": "1.0",
      "image": f"{name}.png",
      "format": "RGBA8888",
      "size": {"w": cols * s, "h": rows * s},
      "scale": "1",
      "parts_image": f"{name}_parts.png",
      "parts": {c: palette[k].tolist() for k, c in enumerate(class_names)},
    },
  }
  with open(os.path.join(folder, f"{name}.json"), "w") as f:
    json.dump(atlas, f, indent=1)
  return [f"{name}.png", f"{name}_parts.png", f"{name}.json"]
