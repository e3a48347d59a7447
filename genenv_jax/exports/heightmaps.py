"""Engine heightmaps at 16 bits (Unity RAW, Unreal PNG, Godot r16 + EXR) and terrain-layer splat maps.

Heights stay floats until here; each export quantises them to uint16 over the
scene's own height range, so one step is (max - min) / 65535 metres. Every
export folder has a sidecar JSON with the ground scale, the height range, the
byte order, which image corner is the engine's origin, and the numbers to
type into the engine's import dialog.
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

UNITY_SIZES = tuple(2**n + 1 for n in range(5, 13))  # 33 ... 4097
UNREAL_SIZES = (127, 253, 505, 1009, 2017, 4033, 8129)
STRIP = 512  # rows per read of the scene


def height_range(scene) -> tuple[float, float]:
  """(min, max) height in metres over the whole scene, read strip by strip."""
  lo, hi = np.inf, -np.inf
  for r in range(0, scene.shape[0], STRIP):
    h = scene.height_m((slice(r, r + STRIP), slice(None)))
    lo, hi = min(lo, float(h.min())), max(hi, float(h.max()))
  return lo, hi


def quantise(h_m: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """Metres -> uint16 over [lo, hi] (0 everywhere for a flat scene)."""
  if hi <= lo:
    return np.zeros(h_m.shape, np.uint16)
  return np.clip(np.round((h_m - lo) / (hi - lo) * 65535.0), 0, 65535).astype(np.uint16)


def tile_starts(n: int, tile: int, sizes, engine: str) -> list[int]:
  """Starts of edge-sharing tiles of ``tile`` samples covering ``n`` (engines join tiles on a shared row)."""
  if tile not in sizes:
    raise ValueError(f"{engine} tile size {tile}: must be one of {list(sizes)}")
  if n == tile:
    return [0]
  if n < tile or (n - 1) % (tile - 1):
    tiled = sorted({k * (t - 1) + 1 for t in sizes[:3] for k in (2, 4)})
    raise ValueError(
      f"scene size {n}: {engine} takes {list(sizes)}, or edge-sharing tiles of one of those sizes "
      f"(k * (size - 1) + 1 pixels, e.g. {tiled}); choose one for --scene_size"
    )
  return list(range(0, n - 1, tile - 1))


def _tile_for(n: int, sizes) -> int:
  """The single-file size when ``n`` is one, else the largest size that tiles ``n``."""
  if n in sizes:
    return n
  for t in sorted(sizes, reverse=True):
    if n > t and (n - 1) % (t - 1) == 0:
      return t
  return sizes[-1]


def plan(shape, engine: str, tile: int | None = None) -> tuple[int, list[int]]:
  """(tile size, tile starts) of a square scene for ``engine`` ('unity' or 'unreal'); refuses other sizes."""
  sizes = UNITY_SIZES if engine == "unity" else UNREAL_SIZES
  h, w = shape
  if h != w:
    raise ValueError(f"scene size {h}x{w}: {engine} terrains are square; use --scene_size=NxN with N in {list(sizes)}")
  tile = tile or _tile_for(h, sizes)
  return tile, tile_starts(h, tile, sizes, engine)


def _require_height(scene, engine):
  if scene.height is None:
    raise ValueError(f"{engine}: the scene has no height channel (world {scene.world!r}); heightmaps need one")


def _sidecar(folder, name, record):
  with open(os.path.join(folder, name), "w") as f:
    json.dump(record, f, indent=1)


def _common(scene, lo, hi):
  return {
    "source": scene.source,
    "metres_per_pixel": scene.metres_per_pixel,
    "min_height_m": lo,
    "max_height_m": hi,
    # Where the engine's height 0 sits: place the terrain at this elevation (a DEM spanning 310-1040 m
    # starts at 310 m, not at 0).
    "base_elevation_m": lo,
    "height_step_m": (hi - lo) / 65535.0,
    "encoding": "uint16: 0 = min_height_m, 65535 = max_height_m",
  }


def unity(scene, folder: str, name: str = "terrain", tile: int | None = None) -> list[str]:
  """Headerless 16-bit little-endian RAW, rows from the south edge (image bottom) up, as Unity reads them.

  A scene of size 2^n+1 (33..4097) is one file; larger ones are tiles
  ``<name>_<x>_<z>.raw`` sharing edges (x east, z north), for Terrain Tools'
  batch import.
  """
  _require_height(scene, "unity")
  tile, starts = plan(scene.shape, "unity", tile)
  n = scene.shape[0]
  lo, hi = height_range(scene)
  paths = []
  for zi, z0 in enumerate(starts):  # z0 counts rows up from the bottom of the image
    top = n - z0 - tile
    for xi, x0 in enumerate(starts):
      fname = f"{name}.raw" if len(starts) == 1 else f"{name}_{xi}_{zi}.raw"
      with open(os.path.join(folder, fname), "wb") as f:
        # The file runs south to north: write strips from the tile's bottom up, each flipped.
        for b in range(top + tile, top, -STRIP):
          a = max(top, b - STRIP)
          q = quantise(scene.height_m((slice(a, b), slice(x0, x0 + tile))), lo, hi)
          np.flipud(q).astype("<u2").tofile(f)
      paths.append(fname)
  side = (tile - 1) * scene.metres_per_pixel
  _sidecar(
    folder,
    "unity.json",
    {
      **_common(scene, lo, hi),
      "files": paths,
      "tiles": len(starts) ** 2,
      "byte_order": "little-endian",
      "origin": "bottom-left: the file's first sample is the image's bottom-left (south-west) corner; rows run north",
      "import_dialog": {
        "Depth": "Bit 16",
        "Width": tile,
        "Height": tile,
        "Byte Order": "Windows",
        "Flip Vertically": False,
        "Terrain Size": {"x": side, "y": hi - lo, "z": side},
        "Terrain Position y": lo,
      },
    },
  )
  return paths


def unreal(scene, folder: str, name: str = "terrain", tile: int | None = None) -> list[str]:
  """16-bit grayscale PNG at a valid Landscape size; larger scenes as ``<name>_x<X>_y<Y>.png`` tiles."""
  _require_height(scene, "unreal")
  tile, starts = plan(scene.shape, "unreal", tile)
  lo, hi = height_range(scene)
  paths = []
  for yi, y0 in enumerate(starts):
    for xi, x0 in enumerate(starts):
      q = quantise(scene.height_m((slice(y0, y0 + tile), slice(x0, x0 + tile))), lo, hi)
      fname = f"{name}.png" if len(starts) == 1 else f"{name}_x{xi}_y{yi}.png"
      Image.fromarray(q.astype("<u2")).save(os.path.join(folder, fname))  # Pillow mode I;16: a 16-bit PNG
      paths.append(fname)
  xy_cm = scene.metres_per_pixel * 100.0
  z_scale = (hi - lo) * 100.0 / 512.0  # Unreal maps the 16-bit range onto 512 units times the Z scale (cm)
  _sidecar(
    folder,
    "unreal.json",
    {
      **_common(scene, lo, hi),
      "files": paths,
      "tiles": len(starts) ** 2,
      "byte_order": "PNG (big-endian 16-bit grayscale)",
      "origin": "top-left: the image's top-left (north-west) corner is the Landscape's origin; +X east, +Y south",
      "import_dialog": {
        "Heightmap File": paths[0] if len(paths) == 1 else f"{name}_x0_y0.png (tiled import)",
        "Scale": {"x": xy_cm, "y": xy_cm, "z": z_scale},
        "Location z (cm)": (lo + hi) / 2.0 * 100.0,
        "Resolution": f"{tile} x {tile}",
      },
    },
  )
  return paths


def godot(scene, folder: str, name: str = "terrain") -> list[str]:
  """``.r16`` (16-bit little-endian, rows from the top) and a 32-bit float ``.exr`` of heights in metres."""
  import OpenEXR

  h, w = scene.shape
  _require_height(scene, "godot")
  lo, hi = height_range(scene)
  with open(os.path.join(folder, f"{name}.r16"), "wb") as f:
    for r in range(0, h, STRIP):
      quantise(scene.height_m((slice(r, r + STRIP), slice(None))), lo, hi).astype("<u2").tofile(f)
  # OpenEXR reads the array's buffer row by row and ignores its strides: a column-major array (a world's
  # heights can be one) would land transposed, so the buffer is made row-major here.
  metres = np.ascontiguousarray(
    np.concatenate([scene.height_m((slice(r, r + STRIP), slice(None))).astype(np.float32) for r in range(0, h, STRIP)])
  )
  header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
  with OpenEXR.File(header, {"Y": metres}) as exr:
    exr.write(os.path.join(folder, f"{name}.exr"))
  _sidecar(
    folder,
    "godot.json",
    {
      **_common(scene, lo, hi),
      "files": [f"{name}.r16", f"{name}.exr"],
      "width": w,
      "height": h,
      "byte_order": "r16: little-endian uint16; exr: float32 metres in channel Y",
      "origin": "top-left: the first sample is the image's top-left (north-west) corner, rows run south (+Z)",
      "import_dialog": {
        "HTerrain (r16)": {"Min Height": lo, "Max Height": hi, "Size": f"{w} x {h}"},
        "Terrain3D (exr)": {"Height scale": 1.0, "Vertex spacing": scene.metres_per_pixel},
      },
    },
  )
  return [f"{name}.r16", f"{name}.exr"]


def splat(scene, folder: str, name: str = "splat") -> list[str]:
  """Per-class weight maps from the label map, 4 classes per RGBA PNG (``splat_0.png`` = classes 0-3)."""
  if scene.labels is None:
    raise ValueError(f"splat: the scene has no label map (world {scene.world!r})")
  k = len(scene.class_names)
  paths = []
  for p in range(-(-k // 4)):
    rgba = np.zeros((*scene.shape, 4), np.uint8)
    for r in range(0, scene.shape[0], STRIP):
      lab = np.asarray(scene.labels[r : r + STRIP])
      for c in range(4):
        rgba[r : r + STRIP, :, c] = np.where(lab == 4 * p + c, 255, 0)
    fname = f"{name}_{p}.png"
    Image.fromarray(rgba, "RGBA").save(os.path.join(folder, fname))
    paths.append(fname)
  layers = {f"{name}_{c // 4}.png:{'RGBA'[c % 4]}": scene.class_names[c] for c in range(k)}
  _sidecar(
    folder,
    "splat.json",
    {
      "source": scene.source,
      "files": paths,
      "layers": layers,
      "origin": "top-left, as the RGB image (Unity alphamaps: flip vertically to match the RAW heightmap)",
      "metres_per_pixel": scene.metres_per_pixel,
    },
  )
  return paths
