"""What the level worlds share (``dungeon``, ``caves``): classes, walkability, rules, statistics, rendering.

A level is a top-down tile map at 1 m per pixel: rock (walls), floor,
corridor, door, water, entrance and exit. Walkable pixels are every class but
rock and water; heights are 1 for rock (walls 3 m high), 0 for water and 0.1
elsewhere.

Rules (real levels satisfy each exactly; generated ones are allowed
``TOLERANCE`` of violating pixels, as in the other worlds):

* ``walkable_connected``: the largest 4-connected walkable component holds
  all walkable pixels (all floor is one connected component).
* ``entrance_to_exit``: an entrance and an exit exist, and a walkable path
  joins them.
* ``corridor_width``: every corridor pixel lies in a 2x2 walkable block
  (corridors at least ``MIN_WIDTH`` wide).
* ``no_door_into_rock``: every doorway (a group of door pixels) joins a
  room (floor) to a corridor or to a second room; one that touches floor
  only opens into rock.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, render

ROCK, FLOOR, CORRIDOR, DOOR, WATER, ENTRANCE, EXIT = range(7)
CLASS_NAMES = ("rock", "floor", "corridor", "door", "water", "entrance", "exit")
PALETTE = np.array(
  [[58, 54, 60], [196, 184, 160], [150, 140, 120], [140, 88, 40], [50, 110, 200], [60, 200, 90], [230, 60, 50]],
  np.uint8,
)
HEIGHTS = np.array([1.0, 0.1, 0.1, 0.1, 0.0, 0.1, 0.1], np.float32)  # per class, in units of the wall height
GROUND = base.Ground(metres_per_pixel=1.0, height_range_m=3.0)
TOLERANCE = 0.03
MIN_WIDTH = 2
FOUR = ndimage.generate_binary_structure(2, 1)

STAT_NAMES = (
  "frac_rock",
  "frac_floor",
  "frac_corridor",
  "frac_door",
  "frac_water",
  "rooms",
  "mean_room_area",
  "doors",
  "path_length",
  "wall_length",
)


def walkable(labels: np.ndarray) -> np.ndarray:
  return (labels != ROCK) & (labels != WATER)


def bfs_distance(passable: np.ndarray, start: np.ndarray) -> np.ndarray:
  """4-connected steps from ``start`` (a mask) through ``passable``; -1 where unreachable."""
  dist = np.full(passable.shape, -1, np.int32)
  front = start & passable
  dist[front] = 0
  seen = front.copy()
  d = 0
  while front.any():
    d += 1
    grown = ndimage.binary_dilation(front, FOUR) & passable & ~seen
    dist[grown] = d
    seen |= grown
    front = grown
  return dist


def mark_doors(labels: np.ndarray, room: np.ndarray) -> None:
  """Corridor pixels where a corridor meets a room become doors (in place).

  A doorway is at most ``MIN_WIDTH + 1`` pixels; a longer run of corridor
  along a room's side (a corridor passing by) stays an open corridor.
  """
  touch = ndimage.binary_dilation(room, FOUR) & (labels == CORRIDOR)
  groups, k = ndimage.label(touch, ndimage.generate_binary_structure(2, 2))
  if k:
    sizes = np.bincount(groups.ravel())
    labels[touch & (sizes[groups] <= MIN_WIDTH + 1)] = DOOR


def rules(labels: np.ndarray, tol: float = TOLERANCE, border: int = 0) -> dict[str, bool]:
  """The four shared rules (see the module doc).

  ``border``: regions of an endless level; corridor pixels and doorways within ``border`` px of the window's
  edge are not judged (a corridor or doorway cut by the window is no fault).
  """
  edge = np.zeros(labels.shape, bool)
  if border:
    edge[:border, :] = edge[-border:, :] = edge[:, :border] = edge[:, -border:] = True
  walk = walkable(labels)
  out = {}
  comp, n = ndimage.label(walk, FOUR)
  if n:
    sizes = np.bincount(comp.ravel())[1:]
    out["walkable_connected"] = bool(sizes.max() >= (1 - tol) * walk.sum())
  else:
    out["walkable_connected"] = False
  ent, ext = labels == ENTRANCE, labels == EXIT
  if ent.any() and ext.any():
    joined = set(np.unique(comp[ent])) & set(np.unique(comp[ext]))
    out["entrance_to_exit"] = bool(joined - {0})
  else:
    out["entrance_to_exit"] = False
  corridor = labels == CORRIDOR
  if corridor.any():
    block = walk[:-1, :-1] & walk[1:, :-1] & walk[:-1, 1:] & walk[1:, 1:]
    covered = np.zeros_like(walk)
    for dy in (0, 1):
      for dx in (0, 1):
        covered[dy : dy + block.shape[0], dx : dx + block.shape[1]] |= block
    out["corridor_width"] = bool((corridor & ~covered & ~edge).sum() <= tol * corridor.sum())
  else:
    out["corridor_width"] = True
  door = labels == DOOR
  if door.any():
    # Each doorway (a group of door pixels) joins a room to a corridor, or two rooms: it touches floor, and
    # corridor or a second room beyond it. One that touches floor only opens into rock.
    groups, k = ndimage.label(door, ndimage.generate_binary_structure(2, 2))
    rooms, _ = ndimage.label(labels == FLOOR, FOUR)
    corridor_near = ndimage.binary_dilation(corridor, FOUR)
    bad = 0
    for g, sl in enumerate(ndimage.find_objects(groups), start=1):
      sl = tuple(slice(max(0, a.start - 1), a.stop + 1) for a in sl)
      mine = groups[sl] == g
      if (mine & edge[sl]).any():
        continue
      ring = ndimage.binary_dilation(mine, FOUR) & ~mine
      touched_rooms = set(np.unique(rooms[sl][ring])) - {0}
      ok = bool(touched_rooms) and (bool((corridor_near[sl] & mine).any()) or len(touched_rooms) >= 2)
      bad += 0 if ok else int(mine.sum())
    out["no_door_into_rock"] = bool(bad <= tol * door.sum())
  else:
    out["no_door_into_rock"] = True
  return out


def statistics(labels: np.ndarray) -> np.ndarray:
  """Class fractions, rooms (floor components of 9+ px), their mean area, door count, path and wall lengths."""
  n = labels.shape[0]
  fr = np.bincount(labels.ravel(), minlength=7)[:5] / labels.size
  comp, k = ndimage.label(labels == FLOOR, FOUR)
  sizes = np.bincount(comp.ravel())[1:] if k else np.zeros(0)
  rooms = sizes[sizes >= 9]
  _, doors = ndimage.label(labels == DOOR, ndimage.generate_binary_structure(2, 2))
  ent, ext = labels == ENTRANCE, labels == EXIT
  path = 0.0
  if ent.any() and ext.any():
    d = bfs_distance(walkable(labels), ent)[ext]
    d = d[d >= 0]
    path = float(d.min()) / n if d.size else 0.0
  rock = labels == ROCK
  wall = (rock[:, 1:] != rock[:, :-1]).sum() + (rock[1:] != rock[:-1]).sum()
  return np.array(
    [*fr, len(rooms) * (32 / n) ** 2, rooms.mean() / n**2 if len(rooms) else 0.0, doors * (32 / n) ** 2, path,
     wall / n**2],
    np.float32,
  )  # fmt: skip


def heights(labels: np.ndarray) -> np.ndarray:
  return HEIGHTS[labels]


def draw_rgb(rng, labels: np.ndarray) -> np.ndarray:
  """Top-down tiles: rock textured and shaded at its edges, stone floor with a 4-px flagstone grid, water rippled."""
  r, c = labels.shape
  colours = PALETTE.astype(np.float32) / 255.0
  colours = np.clip(colours + rng.normal(0, 0.025, colours.shape).astype(np.float32), 0, 1)
  tex = render.value_noise(rng, max(r, c), max(2, max(r, c) // 8))[:r, :c]
  grain = rng.normal(0, 0.03, (r, c)).astype(np.float32)
  yy, xx = np.mgrid[0:r, 0:c]
  return _shade(labels, colours, tex, grain, yy, xx)


def draw_rgb_global(seed: int, tag: int, ys: np.ndarray, xs: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """``draw_rgb`` with its texture keyed to global pixel coordinates (regions agree on their overlap)."""
  from genenv_jax.scenes import fields

  colours = PALETTE.astype(np.float32) / 255.0
  tex = fields.value_noise(seed, tag, ys, xs, 8.0)
  grain = (fields.white(seed, tag + 1, ys, xs) - 0.5) * 0.1
  yy, xx = np.meshgrid(ys, xs, indexing="ij")
  return _shade(labels, colours, tex, grain, yy, xx)


def _shade(labels, colours, tex, grain, yy, xx) -> np.ndarray:
  rgb = colours[labels]
  rock = labels == ROCK
  rgb *= (0.85 + 0.3 * tex + grain)[..., None]
  # Walls cast a dark rim onto the floor next to them.
  rim = ndimage.binary_dilation(rock, FOUR) & ~rock
  rgb[rim] *= 0.78
  grid = ((yy % 4 == 0) | (xx % 4 == 0)) & np.isin(labels, (FLOOR, CORRIDOR))
  rgb[grid] *= 0.9
  water = labels == WATER
  rgb[water] *= (0.9 + 0.2 * np.sin(xx * 0.9 + yy * 0.4))[water][:, None]
  return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def mark_ends(rng, labels: np.ndarray, start_region: np.ndarray) -> bool:
  """Places a 2x2 entrance in ``start_region`` and a 2x2 exit at the walkable spot farthest from it.

  Returns False when there is no room for them (the draw is then redone).
  """
  walk = walkable(labels)
  spots = walk[:-1, :-1] & walk[1:, :-1] & walk[:-1, 1:] & walk[1:, 1:] & (labels[:-1, :-1] != DOOR)
  spots &= (labels[1:, 1:] != DOOR) & (labels[:-1, 1:] != DOOR) & (labels[1:, :-1] != DOOR)
  cand = np.argwhere(spots & start_region[:-1, :-1])
  if not len(cand):
    return False
  y, x = cand[rng.integers(len(cand))]
  labels[y : y + 2, x : x + 2] = ENTRANCE
  dist = bfs_distance(walkable(labels), labels == ENTRANCE)
  far = np.where(spots, dist[:-1, :-1], -1)
  far[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = -1
  if far.max() < 2:
    return False
  ey, ex = np.unravel_index(far.argmax(), far.shape)
  labels[ey : ey + 2, ex : ex + 2] = EXIT
  return True


class LevelWorld:
  """What ``dungeon`` and ``caves`` share: classes, palette, scale, statistics and rejection sampling.

  A subclass sets ``name``, ``version``, ``scene_class_names``, ``rule_names``, ``world_id`` and
  ``_draw(rng, size)``, and adds its own rule to ``validity``.
  """

  class_names = CLASS_NAMES
  palette = PALETTE
  stat_names = STAT_NAMES
  min_size = 32
  ground = GROUND
  world_id = 0
  tunnel = CORRIDOR  # what the finishing pass carves to join pieces (caves: floor)

  def generate(self, seed: int, size: int) -> base.Scene:
    return base.rejection_sample(self, self._draw, self.world_id, seed, size)

  def statistics(self, labels: np.ndarray, height: np.ndarray | None = None) -> np.ndarray:
    return statistics(labels)

  def render(self, labels: np.ndarray, height: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """The level's RGB drawn from its label map (heights follow from the labels)."""
    return draw_rgb(np.random.default_rng([self.world_id, seed]), np.asarray(labels, np.uint8))

  def finish(self, labels: np.ndarray, height: np.ndarray | None = None, seed: int = 0):
    """``finish`` (the module's finishing pass) on a generated label map; returns ``(labels, height)``."""
    out = finish(labels, self.tunnel, seed)
    return out, heights(out)


SPECK = 4  # walkable pieces smaller than this (px) are specks: the finishing pass fills them with rock


def finish(labels: np.ndarray, tunnel: int = CORRIDOR, seed: int = 0) -> np.ndarray:
  """The level worlds' finishing pass on a generated label map: a playable level by small, local edits.

  What level generators do after drawing (rot.js's cellular ``connect``, a
  roguelike's corridor carving), applied to a model's sample:

  1. walkable specks (pieces under ``SPECK`` px) become rock;
  2. corridor pixels outside any 2x2 walkable block are widened by carving the
     rock of their best 2x2 block (``corridor_width``);
  3. doorways that join no room to a corridor or second room become floor
     where they touch floor, rock elsewhere (``no_door_into_rock``);
  4. every other walkable piece is joined to the largest by a ``MIN_WIDTH``
     wide L-shaped tunnel of ``tunnel`` between their nearest pixels, carved
     through rock and water only (``walkable_connected``);
  5. when the entrance or the exit is missing, both are placed anew as the
     worlds place them (``mark_ends``: the exit farthest from the entrance).

  A level that already passes a rule is not touched for it: real levels come
  back unchanged (tested). Returns a new array; ``(out != labels).mean()`` is
  the share of pixels the pass changed, which the evaluation reports.
  """
  lab = np.asarray(labels, np.uint8).copy()
  walk = walkable(lab)
  comp, k = ndimage.label(walk, FOUR)
  if k:
    sizes = np.bincount(comp.ravel())
    lab[walk & (sizes[comp] < SPECK)] = ROCK
  for _ in range(4):  # each step can undo another's (an exit placed on a doorway's floor): to a fixed point
    before = lab.copy()
    _widen_corridors(lab)
    _fix_doors(lab)
    _connect(lab, tunnel)
    ent, ext = lab == ENTRANCE, lab == EXIT
    if not (ent.any() and ext.any()) and walkable(lab).any():
      lab[ent | ext] = FLOOR
      room = lab == FLOOR
      if not mark_ends(np.random.default_rng(seed), lab, room if room.any() else walkable(lab)):
        lab[lab == ENTRANCE] = FLOOR
    if (lab == before).all():
      break
  return lab


def _widen_corridors(lab: np.ndarray) -> None:
  walk = walkable(lab)
  block = walk[:-1, :-1] & walk[1:, :-1] & walk[:-1, 1:] & walk[1:, 1:]
  covered = np.zeros_like(walk)
  for dy in (0, 1):
    for dx in (0, 1):
      covered[dy : dy + block.shape[0], dx : dx + block.shape[1]] |= block
  for y, x in np.argwhere((lab == CORRIDOR) & ~covered):
    best = None
    for dy in (0, -1):
      for dx in (0, -1):
        ys, xs = y + dy, x + dx
        if 0 <= ys and 0 <= xs and ys + 2 <= lab.shape[0] and xs + 2 <= lab.shape[1]:
          win = lab[ys : ys + 2, xs : xs + 2]
          cost = int((~walkable(win)).sum())
          if best is None or cost < best[0]:
            best = (cost, ys, xs)
    if best is not None:
      win = lab[best[1] : best[1] + 2, best[2] : best[2] + 2]
      win[~walkable(win)] = CORRIDOR


def _fix_doors(lab: np.ndarray) -> None:
  door = lab == DOOR
  if not door.any():
    return
  groups, k = ndimage.label(door, ndimage.generate_binary_structure(2, 2))
  rooms, _ = ndimage.label(lab == FLOOR, FOUR)
  corridor_near = ndimage.binary_dilation(lab == CORRIDOR, FOUR)
  for g in range(1, k + 1):
    mine = groups == g
    ring = ndimage.binary_dilation(mine, FOUR) & ~mine
    touched = set(np.unique(rooms[ring])) - {0}
    if touched and ((corridor_near & mine).any() or len(touched) >= 2):
      continue
    lab[mine] = FLOOR if touched else ROCK


def _connect(lab: np.ndarray, tunnel: int) -> None:
  w = MIN_WIDTH
  n0, n1 = lab.shape
  for _ in range(lab.size):  # each tunnel joins at least one piece to the main one
    walk = walkable(lab)
    comp, k = ndimage.label(walk, FOUR)
    if k <= 1:
      return
    sizes = np.bincount(comp.ravel())[1:]
    main = comp == 1 + int(sizes.argmax())
    # The piece nearest the main one, and the nearest pixel pair between them.
    dist, (iy, ix) = ndimage.distance_transform_cdt(~main, metric="taxicab", return_indices=True)
    other = walk & ~main
    d = np.where(other, dist, np.iinfo(np.int32).max)
    y1, x1 = np.unravel_index(d.argmin(), d.shape)
    y0, x0 = iy[y1, x1], ix[y1, x1]
    # An L of MIN_WIDTH-wide blocks, clamped inside the map, carved through rock and water.
    a = (min(int(y0), n0 - w), min(int(x0), n1 - w))
    b = (min(int(y1), n0 - w), min(int(x1), n1 - w))
    for (p, q), (r, s) in ((a, (a[0], b[1])), ((a[0], b[1]), b)):
      win = lab[min(p, r) : max(p, r) + w, min(q, s) : max(q, s) + w]
      win[~walkable(win)] = tunnel
