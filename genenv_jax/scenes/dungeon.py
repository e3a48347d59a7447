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

from genenv_jax.scenes import base, levels

_WORLD_ID = 5005


class DungeonWorld:
  """Rooms and corridors: rock, floor, corridor, door, water, entrance, exit."""

  name = "dungeon"
  version = 1
  class_names = levels.CLASS_NAMES
  palette = levels.PALETTE
  scene_class_names = ("few_rooms", "many_rooms", "flooded")
  rule_names = ("walkable_connected", "entrance_to_exit", "corridor_width", "no_door_into_rock", "has_rooms")
  stat_names = levels.STAT_NAMES
  min_size = 32
  ground = levels.GROUND

  def generate(self, seed: int, size: int) -> base.Scene:
    return base.rejection_sample(self, self._draw, _WORLD_ID, seed, size)

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
    # Doors: the corridor pixels that touch a room.
    from scipy import ndimage

    touch = ndimage.binary_dilation(room_mask, levels.FOUR) & (labels == levels.CORRIDOR)
    labels[touch] = levels.DOOR
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

  def statistics(self, labels: np.ndarray, height: np.ndarray | None = None) -> np.ndarray:
    return levels.statistics(labels)
