"""The ``caves`` world: cellular-automata caverns, top-down at 1 m per pixel.

Rock is seeded at random (45-49%), smoothed by the 4-5 rule for a few
generations (a pixel becomes rock when 5 or more of its 9-neighbourhood are
rock), its border closed, and only the largest cavern kept (rot.js's
``connected`` option): the smaller ones are filled with rock. Flooded caves
get pools where a smooth noise field is low, kept only where they cut off no
more than slivers of the cavern (which are flooded too). An entrance is placed at random and the exit at the
walkable spot farthest from it. Classes, rules and statistics are the level
worlds' (``levels``); caves have no corridors or doors, and add
``cave_shape``: rock covers 20-85% and walls are smooth (no single-pixel
rock pillars or specks beyond the tolerance). Their statistics are the level
statistics less the corridor and door ones (0 in every real cave).

Scene classes: ``narrow``, ``open``, ``flooded``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, levels, render

_WORLD_ID = 6006
_EIGHT = np.ones((3, 3), np.float32)
_NOT_IN_CAVES = ("frac_corridor", "frac_door", "doors")
_KEEP = np.array([i for i, n in enumerate(levels.STAT_NAMES) if n not in _NOT_IN_CAVES])


class CavesWorld(levels.LevelWorld):
  """Caverns: rock, floor, water, entrance, exit (the level classes; no corridors or doors)."""

  name = "caves"
  version = 1
  scene_class_names = ("narrow", "open", "flooded")
  rule_names = ("walkable_connected", "entrance_to_exit", "corridor_width", "no_door_into_rock", "cave_shape")
  world_id = _WORLD_ID
  # Caves have no corridors or doors: those statistics are 0 in every real cave, and a statistic with no spread
  # made the statistics distance (in units of real spread) blow up on any generated speck of corridor or door.
  stat_names = tuple(n for n in levels.STAT_NAMES if n not in _NOT_IN_CAVES)

  tunnel = levels.FLOOR  # caves are joined by tunnels of floor, as rot.js's ``connect``

  def finish(self, labels: np.ndarray, height: np.ndarray | None = None, seed: int = 0):
    """The levels' finishing pass, after corridor and door pixels (no cave has them) become floor."""
    lab = np.asarray(labels, np.uint8).copy()
    lab[(lab == levels.CORRIDOR) | (lab == levels.DOOR)] = levels.FLOOR
    return super().finish(lab, height, seed)

  def statistics(self, labels: np.ndarray, height: np.ndarray | None = None) -> np.ndarray:
    return levels.statistics(labels)[_KEEP]

  def _draw(self, rng, n):
    kind = int(rng.integers(3))
    fill = 0.49 if kind == 0 else 0.45
    rock = rng.random((n, n)) < fill
    for _ in range(4 if kind == 0 else 5):
      count = ndimage.convolve(rock.astype(np.float32), _EIGHT, mode="constant", cval=1.0)
      rock = count >= 5
    rock[0, :] = rock[-1, :] = rock[:, 0] = rock[:, -1] = True
    comp, k = ndimage.label(~rock, levels.FOUR)
    labels = np.full((n, n), levels.ROCK, np.uint8)
    if k:
      sizes = np.bincount(comp.ravel())[1:]
      labels[comp == 1 + int(sizes.argmax())] = levels.FLOOR
    if kind == 2:
      noise = render.value_noise(rng, n, max(2, n // 4))
      floor = labels == levels.FLOOR
      pool = (noise < np.quantile(noise[floor], 0.3)) & floor if floor.any() else floor
      pool &= ~ndimage.binary_dilation(labels == levels.ROCK, levels.FOUR)  # pools lie off the walls
      pools, k = ndimage.label(pool, levels.FOUR)
      for p in range(1, k + 1):  # each pool kept only if it cuts off no more than slivers (flooded too)
        trial = labels.copy()
        trial[pools == p] = levels.WATER
        walk, parts = ndimage.label(levels.walkable(trial), levels.FOUR)
        sizes = np.bincount(walk.ravel())[1:]
        if parts >= 1 and sizes.sum() - sizes.max() <= 0.1 * sizes.sum():
          trial[(walk > 0) & (walk != 1 + int(sizes.argmax()))] = levels.WATER
          labels = trial
    if not levels.mark_ends(rng, labels, np.ones((n, n), bool)):
      labels[:] = levels.ROCK  # fails the rules: redrawn by rejection sampling
    return base.Scene(rgb=levels.draw_rgb(rng, labels), labels=labels, height=levels.heights(labels), scene_class=kind)

  def validity(self, labels: np.ndarray, height: np.ndarray | None = None) -> dict[str, bool]:
    out = levels.rules(labels)
    rock = labels == levels.ROCK
    frac = float(rock.mean())
    neighbours = ndimage.convolve(rock.astype(np.int32), np.ones((3, 3), np.int32), mode="constant", cval=1) - rock
    specks = (rock & (neighbours <= 1)) | (~rock & (neighbours >= 8))
    out["cave_shape"] = bool(0.20 <= frac <= 0.85 and specks.sum() <= levels.TOLERANCE * (~rock).sum())
    return out
