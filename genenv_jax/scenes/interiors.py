"""The ``interiors`` world: top-down floor plans of flats and small houses at 0.5 m per pixel.

A plan is a rectangular footprint in a garden (``outside``), bounded by an
exterior wall 1 px (0.5 m) thick. The footprint is cut into rooms by
interior walls (a binary partition; a flat's first cut may leave a corridor
3 px wide); rooms are joined along a spanning tree of their shared walls by
doors 2 px (1 m) wide, the front door opens from the living room or the
corridor to the garden, and windows 2-3 px wide sit in the exterior walls of
living rooms, bedrooms and kitchens. Rooms have types (living, bedroom,
kitchen, bath, corridor) with their floors and furniture against their
walls, kept clear of the doors: a bed (and a wardrobe) in a bedroom, a sofa,
a table and chairs in the living room, a counter in the kitchen, a toilet
(and a bath) in the bathroom.

Heights are in units of ``GROUND.height_range_m`` (3 m): walls 1, windows
0.33 (a sill at 1 m), doors and floors 0, furniture at its own height.

Rules (real plans satisfy each exactly; generated ones are allowed
``TOLERANCE`` of violating pixels, as in the other worlds):

* ``walls_closed``: no room pixel (floor or furniture) is 4-connected to the
  garden without passing a door: every room is closed by walls.
* ``rooms_reachable``: every room pixel is reachable from a front door (a
  door touching the garden) through rooms and doors.
* ``openings_in_walls``: every door and window pixel lies in a wall line:
  wall or opening on both sides along one axis, no wall on both sides of the
  other.
* ``room_has_furniture``: each room holds its defining piece (a bed in a
  bedroom, a toilet in a bath, a counter in a kitchen, a sofa or a table in
  a living room).
* ``furniture_placed``: every piece lies inside one room (touching no garden,
  door or window, and no floor of a second room) and no piece stands in a
  doorway's clearance (the pixel in front of a door on either side).

Scene classes by plan size: ``studio`` (2-3 rooms), ``flat`` (4-5 rooms with
a corridor), ``house`` (5-7 rooms).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base, render

(OUTSIDE, EXT_WALL, INT_WALL, DOOR, WINDOW, LIVING, BEDROOM, KITCHEN, BATH, CORRIDOR) = range(10)
(BED, TABLE, CHAIR, SOFA, COUNTER, TOILET, BATHTUB, WARDROBE) = range(10, 18)
CLASS_NAMES = (
  "outside", "exterior_wall", "interior_wall", "door", "window",
  "living", "bedroom", "kitchen", "bath", "corridor",
  "bed", "table", "chair", "sofa", "counter", "toilet", "bathtub", "wardrobe",
)  # fmt: skip
PALETTE = np.array(
  [
    [104, 150, 82], [70, 66, 64], [120, 114, 108], [150, 96, 44], [150, 210, 235],
    [196, 160, 112], [150, 170, 200], [220, 214, 196], [190, 226, 226], [170, 164, 156],
    [60, 90, 170], [120, 70, 36], [170, 110, 60], [170, 60, 60], [90, 90, 96],
    [245, 245, 245], [235, 240, 250], [96, 60, 40],
  ],
  np.uint8,
)  # fmt: skip
FLOORS = (LIVING, BEDROOM, KITCHEN, BATH, CORRIDOR)
FURNITURE = tuple(range(BED, WARDROBE + 1))
WALLS = (EXT_WALL, INT_WALL)
OPENINGS = (DOOR, WINDOW)
# Heights in units of 3 m.
HEIGHTS = np.zeros(len(CLASS_NAMES), np.float32)
HEIGHTS[[EXT_WALL, INT_WALL]] = 1.0
HEIGHTS[WINDOW] = 1.0 / 3.0
HEIGHTS[[BED, TABLE, CHAIR, SOFA, COUNTER, TOILET, BATHTUB, WARDROBE]] = [0.18, 0.25, 0.15, 0.27, 0.3, 0.14, 0.19, 0.67]
GROUND = base.Ground(metres_per_pixel=0.5, height_range_m=3.0)
TOLERANCE = 0.03
FOUR = ndimage.generate_binary_structure(2, 1)
EIGHT = ndimage.generate_binary_structure(2, 2)
DEFINING = {BEDROOM: (BED,), BATH: (TOILET,), KITCHEN: (COUNTER,), LIVING: (SOFA, TABLE)}
MIN_ROOM = 5  # px of floor per side (2.5 m)

STAT_NAMES = (
  "frac_outside",
  "frac_walls",
  "frac_floor",
  "frac_furniture",
  "rooms",
  "mean_room_area",
  "room_area_spread",
  "doors",
  "windows",
  "doors_per_room",
  "furniture_density",
  "frac_bedroom",
)


# --- rules ---------------------------------------------------------------------


def _rooms(labels: np.ndarray) -> tuple[np.ndarray, int]:
  """Rooms: 4-connected components of floor and furniture pixels (walls, doors and windows separate them)."""
  inside = np.isin(labels, FLOORS + FURNITURE)
  return ndimage.label(inside, FOUR)


def _room_type(labels: np.ndarray, mask: np.ndarray) -> int:
  """A room's type: the floor class most of its floor pixels have (-1 for a room of furniture only)."""
  floor = labels[mask]
  floor = floor[np.isin(floor, FLOORS)]
  return int(np.bincount(floor, minlength=len(CLASS_NAMES)).argmax()) if floor.size else -1


def rules(labels: np.ndarray, tol: float = TOLERANCE) -> dict[str, bool]:
  """The five rules of the module doc."""
  out = {}
  room_px = np.isin(labels, FLOORS + FURNITURE)
  n_room = max(1, int(room_px.sum()))
  outside = labels == OUTSIDE
  # walls_closed: flood from the garden through everything but walls, doors and windows.
  open_ = ~np.isin(labels, WALLS + OPENINGS)
  comp, _ = ndimage.label(open_, FOUR)
  leak_ids = np.unique(comp[outside])
  leaked = np.isin(comp, leak_ids[leak_ids > 0]) & room_px
  out["walls_closed"] = bool(room_px.any() and leaked.sum() <= tol * n_room)
  # rooms_reachable: from the front doors through rooms and doors.
  door = labels == DOOR
  front = door & ndimage.binary_dilation(outside, FOUR)
  passable = room_px | door
  comp, _ = ndimage.label(passable, FOUR)
  ids = np.unique(comp[front])
  reached = np.isin(comp, ids[ids > 0])
  out["rooms_reachable"] = bool(front.any() and (room_px & ~reached).sum() <= tol * n_room)
  # openings_in_walls.
  pad = np.pad(labels, 1, constant_values=OUTSIDE)
  up, down, left, right = pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]
  wallish = lambda a: np.isin(a, WALLS + OPENINGS)  # noqa: E731
  wall = lambda a: np.isin(a, WALLS)  # noqa: E731
  in_row = wallish(left) & wallish(right) & ~wall(up) & ~wall(down)
  in_col = wallish(up) & wallish(down) & ~wall(left) & ~wall(right)
  opening = np.isin(labels, OPENINGS)
  bad = opening & ~(in_row | in_col)
  out["openings_in_walls"] = bool(opening.any() and bad.sum() <= tol * max(1, int(opening.sum())))
  # room_has_furniture and furniture_placed, room by room.
  rooms, k = _rooms(labels)
  missing = 0
  for r, sl in enumerate(ndimage.find_objects(rooms), start=1):
    mine = rooms[sl] == r
    kind = _room_type(labels[sl], mine)
    need = DEFINING.get(kind)
    if need and not np.isin(labels[sl][mine], need).any():
      missing += 1
  out["room_has_furniture"] = bool(k >= 1 and missing == 0)
  furn = np.isin(labels, FURNITURE)
  touching_bad = ndimage.binary_dilation(np.isin(labels, (OUTSIDE, DOOR, WINDOW)), FOUR) & furn
  clearance = ndimage.binary_dilation(door, FOUR) & ~door
  in_doorway = clearance & furn
  straddle = np.zeros_like(furn)
  pieces, _ = ndimage.label(furn, FOUR)
  floor_rooms, _ = ndimage.label(np.isin(labels, FLOORS), FOUR)
  for p, sl in enumerate(ndimage.find_objects(pieces), start=1):
    sl = tuple(slice(max(0, a.start - 1), a.stop + 1) for a in sl)
    mine = pieces[sl] == p
    ring = ndimage.binary_dilation(mine, FOUR) & ~mine
    floor_types = {int(t) for t in np.unique(labels[sl][ring]) if t in FLOORS}
    if len(floor_types) > 1:
      straddle[sl] |= mine
  bad = touching_bad | in_doorway | straddle
  out["furniture_placed"] = bool(furn.any() and bad.sum() <= tol * max(1, int(furn.sum())))
  return out


def statistics(labels: np.ndarray) -> np.ndarray:
  """Class shares, rooms (count per 32x32 px, mean area share and spread), doors, windows, furniture density."""
  n = labels.shape[0]
  per = (32 / n) ** 2
  walls = np.isin(labels, WALLS).mean()
  floor = np.isin(labels, FLOORS).mean()
  furn = np.isin(labels, FURNITURE).mean()
  rooms, k = _rooms(labels)
  sizes = np.bincount(rooms.ravel())[1:] / labels.size if k else np.zeros(0)
  sizes = sizes[sizes * labels.size >= 4]
  _, doors = ndimage.label(labels == DOOR, EIGHT)
  _, windows = ndimage.label(labels == WINDOW, EIGHT)
  inside = floor + furn
  return np.array(
    [
      (labels == OUTSIDE).mean(), walls, floor, furn,
      len(sizes) * per, sizes.mean() if len(sizes) else 0.0, sizes.std() if len(sizes) else 0.0,
      doors * per, windows * per, doors / max(1, len(sizes)),
      furn / inside if inside else 0.0, (labels == BEDROOM).mean(),
    ],
    np.float32,
  )  # fmt: skip


# --- drawing -------------------------------------------------------------------


def _split(rng, box, want: int, min_side: int, out: list) -> None:
  """Binary partition of ``box`` (y0, x0, y1, x1: floor pixels, walls excluded) into about ``want`` rooms."""
  y0, x0, y1, x1 = box
  h, w = y1 - y0, x1 - x0
  if want <= 1:
    out.append(box)
    return
  along_y = h > w if h != w else rng.random() < 0.5  # cut the longer side
  side = h if along_y else w
  if side < 2 * min_side + 1:
    along_y = not along_y
    side = h if along_y else w
    if side < 2 * min_side + 1:
      out.append(box)
      return
  lo, hi = min_side, side - min_side - 1
  frac = want // 2 / want
  cut = int(np.clip(round(side * frac + rng.integers(-2, 3)), lo, hi))
  a_want, b_want = want // 2, want - want // 2
  if along_y:  # a horizontal wall at row y0 + cut
    _split(rng, (y0, x0, y0 + cut, x1), a_want, min_side, out)
    _split(rng, (y0 + cut + 1, x0, y1, x1), b_want, min_side, out)
  else:
    _split(rng, (y0, x0, y1, x0 + cut), a_want, min_side, out)
    _split(rng, (y0, x0 + cut + 1, y1, x1), b_want, min_side, out)


def _shared_walls(a, b):
  """Wall pixels between two room boxes that a door can open in (the shared run, ends excluded)."""
  ay0, ax0, ay1, ax1 = a
  by0, bx0, by1, bx1 = b
  if ay1 + 1 == by0 or by1 + 1 == ay0:  # a horizontal wall between them
    row = ay1 if ay1 + 1 == by0 else by1
    lo, hi = max(ax0, bx0), min(ax1, bx1)
    return [(row, x) for x in range(lo, hi)] if hi - lo >= 2 else [], "row"
  if ax1 + 1 == bx0 or bx1 + 1 == ax0:
    col = ax1 if ax1 + 1 == bx0 else bx1
    lo, hi = max(ay0, by0), min(ay1, by1)
    return [(y, col) for y in range(lo, hi)] if hi - lo >= 2 else [], "col"
  return [], ""


def _door(rng, labels, cells, axis) -> bool:
  """A 2-px door in a wall run (``cells`` in order); False if it has no room for one."""
  if len(cells) < 2:
    return False
  i = int(rng.integers(0, len(cells) - 1))
  for y, x in cells[i : i + 2]:
    labels[y, x] = DOOR
  return True


def _free_spots(labels, room_box, clear):
  y0, x0, y1, x1 = room_box
  free = np.zeros(labels.shape, bool)
  free[y0:y1, x0:x1] = np.isin(labels[y0:y1, x0:x1], FLOORS)
  return free & ~clear


def _place(rng, labels, room_box, clear, kind, h, w, against_wall=True, tries=60) -> bool:
  """Places an h x w piece of ``kind`` inside the room on free floor (against a wall if asked)."""
  y0, x0, y1, x1 = room_box
  free = _free_spots(labels, room_box, clear)
  for _ in range(tries):
    hh, ww = (h, w) if rng.random() < 0.5 else (w, h)
    if y1 - y0 < hh or x1 - x0 < ww:
      continue
    if against_wall:
      edge = int(rng.integers(4))
      if edge == 0:
        y, x = y0, int(rng.integers(x0, x1 - ww + 1))
      elif edge == 1:
        y, x = y1 - hh, int(rng.integers(x0, x1 - ww + 1))
      elif edge == 2:
        y, x = int(rng.integers(y0, y1 - hh + 1)), x0
      else:
        y, x = int(rng.integers(y0, y1 - hh + 1)), x1 - ww
    else:
      y, x = int(rng.integers(y0 + 1, max(y0 + 2, y1 - hh))), int(rng.integers(x0 + 1, max(x0 + 2, x1 - ww)))
    if y + hh > y1 or x + ww > x1:
      continue
    if free[y : y + hh, x : x + ww].all():
      labels[y : y + hh, x : x + ww] = kind
      return True
  return False


def draw_rgb(rng, labels: np.ndarray) -> np.ndarray:
  """Top-down colours: textured garden, floors by room type (planks, tiles), shaded walls, furniture."""
  r, c = labels.shape
  colours = PALETTE.astype(np.float32) / 255.0
  colours = np.clip(colours + rng.normal(0, 0.02, colours.shape).astype(np.float32), 0, 1)
  rgb = colours[labels]
  tex = render.value_noise(rng, max(r, c), max(2, max(r, c) // 8))[:r, :c]
  grain = rng.normal(0, 0.025, (r, c)).astype(np.float32)
  yy, xx = np.mgrid[0:r, 0:c]
  garden = labels == OUTSIDE
  rgb[garden] *= (0.8 + 0.4 * tex + 2 * grain)[garden][:, None]
  tiles = np.isin(labels, (KITCHEN, BATH)) & (((yy % 2) == 0) ^ ((xx % 2) == 0))
  rgb[tiles] *= 0.93
  planks = (labels == LIVING) & (yy % 3 == 0)
  rgb[planks] *= 0.9
  rgb *= (1.0 + grain)[..., None]
  walls = np.isin(labels, WALLS)
  rim = ndimage.binary_dilation(walls, FOUR) & np.isin(labels, FLOORS)  # walls shade the floor beside them
  rgb[rim] *= 0.85
  return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


class InteriorsWorld:
  """Floor plans: garden, walls, doors, windows, floors by room type and furniture by kind."""

  name = "interiors"
  version = 1
  class_names = CLASS_NAMES
  palette = PALETTE
  scene_class_names = ("studio", "flat", "house")
  rule_names = ("walls_closed", "rooms_reachable", "openings_in_walls", "room_has_furniture", "furniture_placed")
  stat_names = STAT_NAMES
  min_size = 32
  ground = GROUND
  world_id = 7007

  def generate(self, seed: int, size: int) -> base.Scene:
    return base.rejection_sample(self, self._draw, self.world_id, seed, size)

  def validity(self, labels: np.ndarray, height: np.ndarray | None = None) -> dict[str, bool]:
    return rules(labels)

  def statistics(self, labels: np.ndarray, height: np.ndarray | None = None) -> np.ndarray:
    return statistics(labels)

  def render(self, labels: np.ndarray, height: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """The plan's RGB drawn from its label map (heights follow from the labels)."""
    return draw_rgb(np.random.default_rng([self.world_id, seed]), np.asarray(labels, np.uint8))

  def finish(self, labels: np.ndarray, height: np.ndarray | None = None, seed: int = 0):
    """``interiors_finish.finish`` (doors, walls, room floors, furniture mended); returns ``(labels, height)``."""
    from genenv_jax.scenes import interiors_finish

    out = interiors_finish.finish(labels, seed)
    return out, HEIGHTS[out]

  def _draw(self, rng, n):
    kind = int(rng.integers(3))
    scale = n / 32
    want = (int(rng.integers(2, 4)), int(rng.integers(4, 6)), int(rng.integers(5, 8)))[kind]
    want = max(2, int(round(want * min(scale, 2.0))))
    labels = np.full((n, n), OUTSIDE, np.uint8)
    # The footprint: the garden keeps a margin of 1-3 px on each side.
    m = [int(rng.integers(1, 4)) for _ in range(4)]
    Y0, X0, Y1, X1 = m[0], m[1], n - m[2], n - m[3]
    labels[Y0:Y1, X0:X1] = EXT_WALL
    inner = (Y0 + 1, X0 + 1, Y1 - 1, X1 - 1)
    labels[inner[0] : inner[2], inner[1] : inner[3]] = INT_WALL
    boxes: list = []
    corridor = None
    if kind == 1 and min(inner[2] - inner[0], inner[3] - inner[1]) >= 2 * MIN_ROOM + 5:
      # A corridor 3 px wide through the middle of the longer side; rooms on both sides of it.
      y0, x0, y1, x1 = inner
      along_y = (y1 - y0) < (x1 - x0)  # a horizontal corridor in a wide plan
      if along_y:
        cy = int(rng.integers(y0 + MIN_ROOM + 1, y1 - MIN_ROOM - 3))
        corridor = (cy, x0, cy + 3, x1)
        halves = [(y0, x0, cy - 1, x1), (cy + 4, x0, y1, x1)]
      else:
        cx = int(rng.integers(x0 + MIN_ROOM + 1, x1 - MIN_ROOM - 3))
        corridor = (y0, cx, y1, cx + 3)
        halves = [(y0, x0, y1, cx - 1), (y0, cx + 4, y1, x1)]
      per = [want // 2, want - want // 2]
      for half, k in zip(halves, per):
        _split(rng, half, k, MIN_ROOM, boxes)
    else:
      _split(rng, inner, want, MIN_ROOM, boxes)
    if len(boxes) < 2:
      return self._empty(rng, n)
    # Room types: the largest is the living room, the smallest the bath, then a kitchen, then bedrooms.
    area = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    order = np.argsort(area)[::-1]
    types = [BEDROOM] * len(boxes)
    types[order[0]] = LIVING
    if len(boxes) >= 2:
      types[order[-1]] = BATH
    if len(boxes) >= 4:
      types[order[-2]] = KITCHEN
    elif len(boxes) == 3:
      types[order[1]] = KITCHEN if rng.random() < 0.5 else BEDROOM
    all_boxes = list(boxes) + ([corridor] if corridor else [])
    all_types = types + ([CORRIDOR] if corridor else [])
    for (y0, x0, y1, x1), t in zip(all_boxes, all_types):
      labels[y0:y1, x0:x1] = t
    # Doors: a spanning tree of the rooms from the living room (or the corridor), over shared walls.
    hub = len(all_boxes) - 1 if corridor else int(order[0])
    joined, frontier = {hub}, [hub]
    while frontier:
      a = frontier.pop(0)
      for b in rng.permutation(len(all_boxes)):
        b = int(b)
        if b in joined:
          continue
        cells, axis = _shared_walls(all_boxes[a], all_boxes[b])
        if cells and _door(rng, labels, cells, axis):
          joined.add(b)
          frontier.append(b)
    if len(joined) < len(all_boxes):
      return self._empty(rng, n)
    # The front door: in the hub's exterior wall.
    runs = self._exterior_runs(all_boxes[hub], (Y0, X0, Y1, X1))
    rng.shuffle(runs)
    if not runs or not _door(rng, labels, runs[0][0], runs[0][1]):
      return self._empty(rng, n)
    # Windows in the exterior walls of living rooms, bedrooms and kitchens (away from doors).
    for b, t in zip(all_boxes, all_types):
      if t not in (LIVING, BEDROOM, KITCHEN):
        continue
      for cells, _ in self._exterior_runs(b, (Y0, X0, Y1, X1)):
        if len(cells) >= 5 and rng.random() < 0.8:
          w = int(rng.integers(2, 4))
          i = int(rng.integers(1, len(cells) - w))
          span = cells[i : i + w]
          if all(labels[y, x] == EXT_WALL for y, x in span):
            for y, x in span:
              labels[y, x] = WINDOW
    # Furniture, kept off every door's clearance.
    door = labels == DOOR
    clear = ndimage.binary_dilation(door, FOUR, iterations=2) | ndimage.binary_dilation(labels == WINDOW, FOUR)
    for b, t in zip(all_boxes, all_types):
      ok = True
      if t == BEDROOM:
        ok = _place(rng, labels, b, clear, BED, 3, 4)
        if ok and rng.random() < 0.6:
          _place(rng, labels, b, clear, WARDROBE, 1, 3)
      elif t == LIVING:
        ok = _place(rng, labels, b, clear, SOFA, 2, 4)
        if _place(rng, labels, b, clear, TABLE, 2, 2, against_wall=False):
          self._chairs(rng, labels, clear)
      elif t == KITCHEN:
        ok = _place(rng, labels, b, clear, COUNTER, 1, min(5, max(3, min(b[2] - b[0], b[3] - b[1]) - 1)))
      elif t == BATH:
        ok = _place(rng, labels, b, clear, TOILET, 1, 1)
        if ok and rng.random() < 0.6:
          _place(rng, labels, b, clear, BATHTUB, 2, 4)
      if not ok:
        return self._empty(rng, n)
    height = HEIGHTS[labels]
    return base.Scene(rgb=draw_rgb(rng, labels), labels=labels, height=height, scene_class=kind)

  @staticmethod
  def _chairs(rng, labels, clear):
    """Chairs on free floor beside the newest table (1-4)."""
    table = labels == TABLE
    around = ndimage.binary_dilation(table, FOUR) & np.isin(labels, FLOORS) & ~clear
    spots = np.argwhere(around)
    rng.shuffle(spots)
    for y, x in spots[: int(rng.integers(1, 5))]:
      labels[y, x] = CHAIR

  @staticmethod
  def _exterior_runs(box, footprint):
    """The exterior-wall runs along a room box (the cells beside its floor), each with its axis."""
    y0, x0, y1, x1 = box
    Y0, X0, Y1, X1 = footprint
    runs = []
    if y0 == Y0 + 1:
      runs.append(([(Y0, x) for x in range(x0, x1)], "row"))
    if y1 == Y1 - 1:
      runs.append(([(Y1 - 1, x) for x in range(x0, x1)], "row"))
    if x0 == X0 + 1:
      runs.append(([(y, X0) for y in range(y0, y1)], "col"))
    if x1 == X1 - 1:
      runs.append(([(y, X1 - 1) for y in range(y0, y1)], "col"))
    return [r for r in runs if len(r[0]) >= 2]

  @staticmethod
  def _empty(rng, n):
    """A draw that failed: all garden (fails the rules, so rejection sampling redraws)."""
    labels = np.full((n, n), OUTSIDE, np.uint8)
    return base.Scene(rgb=draw_rgb(rng, labels), labels=labels, height=HEIGHTS[labels], scene_class=0)
