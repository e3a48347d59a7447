"""The ``dungeon`` world: roguelike levels of rooms joined by corridors, top-down at 1 m per pixel.

Rectangular rooms are placed apart from each other, then joined along a
minimum spanning tree of their centres (plus, sometimes, one loop) by
L-shaped corridors ``MIN_WIDTH`` px wide; where a corridor meets a room the
corridor pixels become doors. Some rooms hold a pool of water (never cutting
the room in two). An entrance is placed in one room and the exit at the
walkable spot farthest from it. Classes, rules and statistics are the level
worlds' (``levels``): everything walkable is connected, the exit is
reachable from the entrance, corridors are wide enough and no door opens
into rock.

Scene classes: ``few_rooms``, ``many_rooms``, ``flooded`` (pools in rooms).
"""

from __future__ import annotations

import numpy as np

from genenv_jax.scenes import base, fields, levels

_WORLD_ID = 5005


class DungeonWorld(levels.LevelWorld):
  """Rooms and corridors: rock, floor, corridor, door, water, entrance, exit."""

  name = "dungeon"
  version = 1
  scene_class_names = ("few_rooms", "many_rooms", "flooded")
  rule_names = ("walkable_connected", "entrance_to_exit", "corridor_width", "no_door_into_rock", "has_rooms")
  world_id = _WORLD_ID

  def _draw(self, rng, n):
    kind = int(rng.integers(3))
    scale = n / 32
    want = int(rng.integers(2, 4) if kind == 0 else rng.integers(4, 6)) * max(1, int(scale**2 * 0.6))
    lo, hi = 4, max(6, int(9 * scale**0.5))
    labels = np.full((n, n), levels.ROCK, np.uint8)
    rooms = []
    for _ in range(40 * want):
      if len(rooms) >= want:
        break
      h, w = (int(v) for v in rng.integers(lo, hi + 1, 2))
      y, x = int(rng.integers(1, n - h)), int(rng.integers(1, n - w))
      if all(y + h + 3 <= ry or ry + rh + 3 <= y or x + w + 3 <= rx or rx + rw + 3 <= x for ry, rx, rh, rw in rooms):
        rooms.append((y, x, h, w))
    if len(rooms) < 2:
      rooms = [(1, 1, lo, lo), (n - lo - 1, n - lo - 1, lo, lo)]
    for y, x, h, w in rooms:
      labels[y : y + h, x : x + w] = levels.FLOOR
    room_mask = labels == levels.FLOOR
    for a, b in self._edges(rng, rooms):
      self._corridor(rng, labels, rooms[a], rooms[b])
    levels.mark_doors(labels, room_mask)
    if kind == 2:
      for y, x, h, w in rooms:
        if h >= 6 and w >= 6 and rng.random() < 0.7:
          yy, xx = np.mgrid[0:h, 0:w]
          cy, cx = (h - 1) / 2, (w - 1) / 2
          pool = ((yy - cy) / max(1.0, h / 2 - 2)) ** 2 + ((xx - cx) / max(1.0, w / 2 - 2)) ** 2 <= 1.0
          pool &= (yy >= 2) & (yy < h - 2) & (xx >= 2) & (xx < w - 2)
          labels[y : y + h, x : x + w][pool] = levels.WATER
    y, x, h, w = rooms[int(rng.integers(len(rooms)))]
    start = np.zeros((n, n), bool)
    start[y : y + h, x : x + w] = True
    if not levels.mark_ends(rng, labels, start):
      labels[:] = levels.ROCK  # fails the rules: redrawn by rejection sampling
    height = levels.heights(labels)
    return base.Scene(rgb=levels.draw_rgb(rng, labels), labels=labels, height=height, scene_class=kind)

  @staticmethod
  def _edges(rng, rooms):
    """A minimum spanning tree of the room centres (Prim), and with probability 1/2 one extra edge (a loop)."""
    c = np.array([(y + h / 2, x + w / 2) for y, x, h, w in rooms])
    d = np.abs(c[:, None] - c[None]).sum(-1)
    inside, edges = {0}, []
    while len(inside) < len(rooms):
      best = min(((d[i, j], i, j) for i in inside for j in range(len(rooms)) if j not in inside))
      edges.append((best[1], best[2]))
      inside.add(best[2])
    if len(rooms) > 2 and rng.random() < 0.5:
      i, j = rng.choice(len(rooms), 2, replace=False)
      edges.append((int(i), int(j)))
    return edges

  @staticmethod
  def _corridor(rng, labels, a, b):
    """An L-shaped corridor MIN_WIDTH wide between two room centres, carved through rock only."""
    w = levels.MIN_WIDTH
    n = labels.shape[0]
    (ay, ax, ah, aw), (by, bx, bh, bw) = a, b
    y0, x0 = int(ay + ah // 2 - w // 2), int(ax + aw // 2 - w // 2)
    y1, x1 = int(by + bh // 2 - w // 2), int(bx + bw // 2 - w // 2)
    y0, y1 = (min(max(v, 1), n - 1 - w) for v in (y0, y1))
    x0, x1 = (min(max(v, 1), n - 1 - w) for v in (x0, x1))
    horizontal_first = rng.random() < 0.5
    cy, cx = (y0, x1) if horizontal_first else (y1, x0)  # the corner
    segs = [((y0, x0), (cy, cx)), ((cy, cx), (y1, x1))]
    for (p, q), (r, s) in segs:
      ys, ye = min(p, r), max(p, r) + w
      xs, xe = min(q, s), max(q, s) + w
      win = labels[ys:ye, xs:xe]
      win[win == levels.ROCK] = levels.CORRIDOR

  def validity(self, labels: np.ndarray, height: np.ndarray | None = None) -> dict[str, bool]:
    out = levels.rules(labels)
    from scipy import ndimage

    comp, k = ndimage.label(labels == levels.FLOOR, levels.FOUR)
    sizes = np.bincount(comp.ravel())[1:] if k else np.zeros(0)
    rock = float((labels == levels.ROCK).mean())
    out["has_rooms"] = bool((sizes >= 9).sum() >= 2 and 0.25 <= rock <= 0.92)
    return out


CELL = 24  # dungeon_regions: one room per lattice cell of CELL x CELL px
SPINE = 4  # every SPINE-th lattice column joins its rooms vertically (the rows of rooms are always joined)
OFFSET_RANGE = 1 << 20
_T_ROOM, _T_EDGE, _T_CORNER, _T_POOL, _T_ENDS, _T_OFF, _T_TEX = range(11, 18)


class DungeonRegionsWorld(DungeonWorld):
  """An endless dungeon per seed: ``region(seed, y0, x0, h, w)`` is a pure function of global coordinates.

  One room per lattice cell (size and position keyed by the cell), rooms
  joined to their east neighbour always and to their south neighbour on every
  ``SPINE``-th column and at random elsewhere, so the whole endless level is
  one connected dungeon. Entrances and exits are marked in rooms chosen by a
  hash of their cell. A window cannot hold the whole level, so its rules are
  the local ones: no walkable pocket sealed inside the window
  (``no_enclosed_pocket``: every walkable piece reaches the window's border,
  where it joins the rest), corridors 2 px wide and no door into rock (both
  away from the border, where a corridor or doorway can be cut), and rooms
  present.
  """

  name = "dungeon_regions"
  version = 1
  finish = None  # a window's rules are local; the finishing pass would join and mark a whole level
  rule_names = ("no_enclosed_pocket", "corridor_width", "no_door_into_rock", "has_rooms")
  region_multiple = 1
  min_size = 32

  def generate(self, seed: int, size: int) -> base.Scene:
    base.check_size(self.name, size, self.min_size)
    return self.region(seed, *fields.seeded_offset(seed, _T_OFF, OFFSET_RANGE), size, size)

  @staticmethod
  def _room(seed, u, v):
    r = fields.uniform(seed, _T_ROOM, u, v, np.arange(4))
    h, w = 6 + int(r[0] * 9), 6 + int(r[1] * 9)  # 6..14 px
    y = u * CELL + 2 + int(r[2] * (CELL - 4 - h + 1))
    x = v * CELL + 2 + int(r[3] * (CELL - 4 - w + 1))
    return y, x, h, w

  def region(self, seed: int, y0: int, x0: int, height: int, width: int) -> base.Scene:
    fields.check_region(self.name, y0, x0, height, width, self.region_multiple, self.min_size)
    seed, y0, x0, height, width = int(seed), int(y0), int(x0), int(height), int(width)
    u0, u1 = (y0 // CELL) - 1, (y0 + height) // CELL + 1
    v0, v1 = (x0 // CELL) - 1, (x0 + width) // CELL + 1
    oy, ox = u0 * CELL, v0 * CELL  # the canvas's global origin
    lab = np.full(((u1 - u0 + 1) * CELL, (v1 - v0 + 1) * CELL), levels.ROCK, np.uint8)
    rooms = {(u, v): self._room(seed, u, v) for u in range(u0, u1 + 1) for v in range(v0, v1 + 1)}
    for y, x, h, w in rooms.values():
      lab[y - oy : y - oy + h, x - ox : x - ox + w] = levels.FLOOR
    room_mask = lab == levels.FLOOR
    for (u, v), a in rooms.items():
      for du, dv in ((0, 1), (1, 0)):
        b = rooms.get((u + du, v + dv))
        if b is None:
          continue
        if du and v % SPINE and fields.uniform(seed, _T_EDGE, u, v) >= 0.35:
          continue  # no vertical corridor here
        corner_first = fields.uniform(seed, _T_CORNER, u, v, du) < 0.5
        self._carve(lab, a, b, oy, ox, corner_first)
    levels.mark_doors(lab, room_mask)
    for (u, v), (y, x, h, w) in rooms.items():
      pick = fields.uniform(seed, _T_ENDS, u, v)
      ry, rx = y - oy, x - ox
      if fields.uniform(seed, _T_POOL, u, v) < 0.2 and h >= 8 and w >= 8:
        lab[ry + 3 : ry + h - 3, rx + 3 : rx + w - 3] = levels.WATER
      elif pick < 0.08:
        lab[ry + 1 : ry + 3, rx + 1 : rx + 3] = levels.ENTRANCE
      elif pick > 0.92:
        lab[ry + h - 3 : ry + h - 1, rx + w - 3 : rx + w - 1] = levels.EXIT
    crop = lab[y0 - oy : y0 - oy + height, x0 - ox : x0 - ox + width].copy()
    kind = 2 if (crop == levels.WATER).any() else (1 if (crop == levels.FLOOR).mean() > 0.2 else 0)
    ys, xs = np.arange(oy, oy + lab.shape[0]), np.arange(ox, ox + lab.shape[1])
    rgb = levels.draw_rgb_global(seed, _T_TEX, ys, xs, lab)[y0 - oy : y0 - oy + height, x0 - ox : x0 - ox + width]
    return base.Scene(rgb=rgb, labels=crop, height=levels.heights(crop), scene_class=kind)

  @staticmethod
  def _carve(lab, a, b, oy, ox, corner_first):
    w = levels.MIN_WIDTH
    (ay, ax, ah, aw), (by, bx, bh, bw) = a, b
    y0, x0 = ay + ah // 2 - w // 2 - oy, ax + aw // 2 - w // 2 - ox
    y1, x1 = by + bh // 2 - w // 2 - oy, bx + bw // 2 - w // 2 - ox
    cy, cx = (y0, x1) if corner_first else (y1, x0)
    for (p, q), (r, s) in (((y0, x0), (cy, cx)), ((cy, cx), (y1, x1))):
      win = lab[min(p, r) : max(p, r) + w, min(q, s) : max(q, s) + w]
      win[win == levels.ROCK] = levels.CORRIDOR

  def validity(self, labels: np.ndarray, height: np.ndarray | None = None) -> dict[str, bool]:
    from scipy import ndimage

    tol = levels.TOLERANCE
    walk = levels.walkable(labels)
    comp, k = ndimage.label(walk, levels.FOUR)
    border = np.zeros(labels.shape, bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    open_ids = set(np.unique(comp[border & walk]))
    sealed = walk & ~np.isin(comp, list(open_ids))
    out = {"no_enclosed_pocket": bool(k and sealed.sum() <= tol * walk.sum())}
    # The shared rules, not judged at the window's edge (a corridor or doorway cut by it is no fault).
    inner = levels.rules(labels, border=2)
    out["corridor_width"] = inner["corridor_width"]
    out["no_door_into_rock"] = inner["no_door_into_rock"]
    comp, k = ndimage.label(labels == levels.FLOOR, levels.FOUR)
    sizes = np.bincount(comp.ravel())[1:] if k else np.zeros(0)
    out["has_rooms"] = bool((sizes >= 9).sum() >= 1 and 0.25 <= float((labels == levels.ROCK).mean()) <= 0.95)
    return out
