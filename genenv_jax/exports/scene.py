"""A large scene on disk, ready for export: RGB, label map and float heights, with its ground scale.

Exporters read windows of it, so a scene far larger than memory is written
tile by tile. It comes from a trained model (the tiled, seamless rendering of
``genenv_jax.tiling``, streamed strip by strip into memory-mapped files) or
from a built-in world (a real procedural scene of the same size).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np


@dataclasses.dataclass
class ExportScene:
  """Arrays of one scene (memory-mapped when large) and what they mean.

  Attributes:
    rgb: [H, W, 3] uint8.
    labels: [H, W] uint8 classes, or None.
    height: [H, W] float32 in [0, 1] (the world's height unit), or None.
    world: the world's name ('' for user data).
    class_names, palette: the label classes and their colours.
    metres_per_pixel: ground resolution.
    height_range_m: metres spanned by height 0..1.
    source: what drew it ('world city seed 0' or 'model WORKDIR step N').
    base_m: the elevation of height 0 in metres (a model trained on a DEM spanning 310-1040 m: 310).
  """

  rgb: np.ndarray
  labels: np.ndarray | None
  height: np.ndarray | None
  world: str
  class_names: tuple[str, ...]
  palette: np.ndarray
  metres_per_pixel: float
  height_range_m: float
  source: str
  base_m: float = 0.0

  @property
  def shape(self) -> tuple[int, int]:
    return self.rgb.shape[:2]

  def height_m(self, window=(slice(None), slice(None))) -> np.ndarray:
    """Heights in metres of a window [h, w] float64."""
    return self.base_m + np.asarray(self.height[window], np.float64) * self.height_range_m


def _ground(world):
  g = getattr(world, "ground", None)
  return (g.metres_per_pixel, g.height_range_m) if g else (1.0, 1.0)


def _spool(folder: str, name: str, shape, dtype):
  return np.lib.format.open_memmap(os.path.join(folder, f"{name}.npy"), mode="w+", dtype=dtype, shape=shape)


def from_world(world_name: str, height: int, width: int, seed: int) -> ExportScene:
  """A real scene of ``height`` x ``width`` pixels: the world drawn at the next multiple of 16, cropped."""
  from genenv_jax.scenes import get_world

  w = get_world(world_name)
  size = max(height, width, w.min_size)
  size = -(-size // 16) * 16
  sc = w.generate(seed, size)
  mpp, hr = _ground(w)
  return ExportScene(
    rgb=sc.rgb[:height, :width],
    labels=sc.labels[:height, :width],
    height=sc.height[:height, :width].astype(np.float32),
    world=world_name,
    class_names=tuple(w.class_names),
    palette=w.palette,
    metres_per_pixel=mpp,
    height_range_m=hr,
    source=f"world {world_name} seed {seed} ({size}x{size} drawn, cropped to {height}x{width})",
  )


def from_model(trained, height: int, width: int, seed: int, folder: str, tile_cells: int = 32, temperature=None):
  """The model's seamless large scene, rendered strip by strip into memory-mapped files in ``folder``."""
  from genenv_jax import tiling
  from genenv_jax.synthesis import provenance

  temperature = provenance.check_temperature(trained.family.sample_temperature if temperature is None else temperature)
  lay = trained.layout
  rgb = _spool(folder, "rgb", (height, width, 3), np.uint8)
  labels = _spool(folder, "labels", (height, width), np.uint8) if "labels" in lay.channels else None
  heights = _spool(folder, "height", (height, width), np.float32) if "height" in lay.channels else None
  row = 0
  for strip in tiling.iter_strips(trained, height, width, seed, tile_cells, temperature, -1, progress=True):
    n = strip.shape[0]
    dec = lay.decode(strip)  # strips arrive on the host already
    rgb[row : row + n] = dec["rgb"]
    if labels is not None:
      labels[row : row + n] = dec["labels"]
    if heights is not None:
      heights[row : row + n] = dec["height"]
    row += n
  # Close the writable maps and reopen read-only: their dirty pages go to disk, and exporters page
  # in only the windows they read.
  for a in (rgb, labels, heights):
    if a is not None:
      a.flush()
  rgb, labels, heights = (
    None if a is None else np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")
    for a, name in ((rgb, "rgb"), (labels, "labels"), (heights, "height"))
  )
  w = trained.world
  mpp, hr = _ground(w) if w is not None else (1.0, 1.0)
  base = 0.0
  if trained.height_range_m is not None:  # trained on heights in metres (a layered folder of .npy or GeoTIFF)
    base, hr = trained.height_range_m[0], trained.height_range_m[1] - trained.height_range_m[0]
    mpp = float(trained.config.data.get("metres_per_pixel", 0.0) or trained.metres_per_pixel or mpp)
  return ExportScene(
    rgb=rgb,
    labels=labels,
    height=heights,
    world=w.name if w is not None else "",
    class_names=lay.class_names,
    palette=lay.palette,
    metres_per_pixel=mpp,
    height_range_m=hr,
    source=f"model {trained.workdir} step {trained.step} seed {seed} temperature {temperature}",
    base_m=base,
  )


def render_with_world(scene: ExportScene, seed: int = 0, max_side: int = 4097, finished: bool = False) -> ExportScene:
  """Layout first: the scene's RGB redrawn by its world's renderer from its label and height maps.

  ``finished``: the world's finishing pass (``levels.finish``: dungeon, caves; ``interiors_finish``) first
  mends the label map into a playable level (pieces joined, corridors widened, doorways and ends fixed) or a
  usable plan (rooms closed and reachable, openings in walls, furniture where it belongs).
  """
  import dataclasses as dc

  from genenv_jax.scenes import get_world

  h, w = scene.shape
  world = get_world(scene.world) if scene.world else None
  mode = "finished" if finished else "world"
  if finished and (world is None or getattr(world, "finish", None) is None):
    raise ValueError(
      "render='finished': needs a world with a finishing pass (dungeon, caves, interiors); "
      f"got {scene.world or 'user data'!r}"
    )
  if world is None or not hasattr(world, "render") or scene.labels is None or scene.height is None:
    raise ValueError(
      f"render={mode!r}: needs a world with a renderer (city, terrain, dungeon, caves, interiors), labels and heights; "
      f"got {scene.world or 'user data'!r}"
    )
  if h != w or h > max_side:  # said before any work is done
    raise ValueError(f"render={mode!r}: draws square scenes up to {max_side} px in one piece; got {h}x{w}")
  if finished:
    labels, height = world.finish(np.asarray(scene.labels), None, seed)
    changed = float((labels != np.asarray(scene.labels)).mean())
    scene = dc.replace(
      scene, labels=labels, height=height.astype(np.float32),
      source=scene.source + f", finished by the world's pass ({changed:.1%} of pixels changed)",
    )  # fmt: skip
  rgb = world.render(np.asarray(scene.labels), np.asarray(scene.height), seed)
  return dc.replace(scene, rgb=rgb, source=scene.source + ", RGB drawn by the world from the model's layout")
