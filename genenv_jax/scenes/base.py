"""What every procedural scene world provides.

A world is a small object with pure numpy functions: ``generate(seed, size)``
draws one scene, ``validity(labels, height)`` checks the world's rules and
``statistics(labels, height)`` summarises a scene as a vector. Generated
scenes are judged with the same two functions as real ones.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np


@dataclasses.dataclass(frozen=True)
class Scene:
  """One scene.

  Attributes:
    rgb: [h, w, 3] uint8 rendering.
    labels: [h, w] uint8 semantic class per pixel.
    height: [h, w] float32 height map in [0, 1].
    scene_class: integer scene category (used for class conditioning).
  """

  rgb: np.ndarray
  labels: np.ndarray
  height: np.ndarray
  scene_class: int


@dataclasses.dataclass(frozen=True)
class Ground:
  """A top-down world's scale: what a pixel and a height unit are on the ground (for engine exports)."""

  metres_per_pixel: float
  height_range_m: float  # metres spanned by height 0..1


class World(Protocol):
  """The interface of a scene world (see ``city.CityWorld``)."""

  name: str
  version: int
  class_names: tuple[str, ...]
  palette: np.ndarray  # [num_classes, 3] uint8, for label-map pictures
  scene_class_names: tuple[str, ...]
  rule_names: tuple[str, ...]
  stat_names: tuple[str, ...]
  min_size: int
  ground: Ground | None  # None for side views and sprites (no heightmap)

  def generate(self, seed: int, size: int) -> Scene: ...

  def validity(self, labels: np.ndarray, height: np.ndarray | None) -> dict[str, bool]: ...

  def statistics(self, labels: np.ndarray, height: np.ndarray | None) -> np.ndarray: ...


def check_size(world_name: str, size: int, min_size: int) -> None:
  """Raises a clear error for a resolution the world cannot draw."""
  if not isinstance(size, (int, np.integer)) or size < min_size or size % 16:
    raise ValueError(
      f"scene size {size!r} for world {world_name!r}: must be a multiple of 16 "
      f"and at least {min_size} (for example 32, 64, 128)"
    )


def rgb_to_labels(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
  """Nearest-palette classification, for models that output RGB only."""
  d = ((rgb[..., None, :].astype(np.float32) - palette.astype(np.float32)) ** 2).sum(-1)
  return d.argmin(-1).astype(np.uint8)


def rejection_sample(world, draw, world_id: int, seed: int, size: int, attempts: int = 20) -> Scene:
  """Draws scene ``seed`` with ``draw(rng, size)`` until it passes every rule of ``world``.

  A rare draw that breaks a rule is redrawn from the next attempt's seed, so
  every real scene satisfies the rules and the result is still a pure
  function of (world, seed, size).
  """
  check_size(world.name, size, world.min_size)
  for attempt in range(attempts):
    rng = np.random.default_rng([world_id, int(seed), int(size), attempt])
    scene = draw(rng, size)
    if all(world.validity(scene.labels, scene.height).values()):
      return scene
  raise RuntimeError(f"world {world.name!r}: no valid scene for seed {seed} at size {size} in {attempts} draws")
