"""The ``interiors`` world's finishing pass: a generated floor plan mended into a usable one by local edits.

What a floor-plan tool does after a layout is drawn (House-GAN++ and
HouseDiffusion leave door placement and room typing to a post-process; Zhang
et al., AIIDE 2020, repair generated levels with the fewest edits), applied to
a model's sample, one rule of ``interiors.rules`` per step:

1. floor specks (rooms under ``SPECK`` px) become interior wall;
2. door and window pixels that do not sit in a wall line become wall where
   they touch one, floor otherwise (``openings_in_walls``);
3. garden pixels touching a room become exterior wall (``walls_closed``);
4. each room takes one floor type: the type its furniture defines (a bed makes
   a bedroom, a toilet or a bath a bathroom, a counter a kitchen, a sofa or a
   table a living room; the most pixels win), else the type most of its floor
   has;
5. furniture touching the garden, a door or a window, or standing in a
   doorway's clearance, becomes floor (``furniture_placed``);
6. a plan without a front door gets one, 2 px wide, in the exterior wall of
   its living room or corridor (else its largest room); every room the front
   door does not reach gets a 2-px door in a wall it shares with a reached
   room, breadth first (``rooms_reachable``);
7. a room still without its defining piece gets one against a wall, clear of
   the doors, where it fits (``room_has_furniture``).

Steps repeat to a fixed point (at most 4 rounds). A plan that already passes a
rule is not touched for it: real plans come back unchanged (tested). Returns a
new array; ``(out != labels).mean()`` is the share of pixels changed, which
the evaluation reports.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import interiors as I  # noqa: N812

SPECK = 6  # px: rooms smaller than this are specks
PATCH = 12  # px: a room's floor patches of another type smaller than this are retyped, larger ones walled off
# The piece a room type needs and its size (as the world draws it); living rooms get a table.
PIECE = {I.BEDROOM: (I.BED, 3, 4), I.BATH: (I.TOILET, 1, 1), I.KITCHEN: (I.COUNTER, 1, 3), I.LIVING: (I.TABLE, 2, 2)}
ROOM = I.FLOORS + I.FURNITURE


def finish(labels: np.ndarray, seed: int = 0) -> np.ndarray:
  """The finishing pass of the module doc on one label map; returns a new ``uint8`` array."""
  lab = np.asarray(labels, np.uint8).copy()
  rng = np.random.default_rng([7007, seed])
  rooms, k = ndimage.label(np.isin(lab, ROOM), I.FOUR)
  if k:
    sizes = np.bincount(rooms.ravel())
    lab[(rooms > 0) & (sizes[rooms] < SPECK)] = I.INT_WALL
  for _ in range(4):
    before = lab.copy()
    rules = I.rules(lab)
    if not rules["openings_in_walls"]:
      _fix_openings(lab)
    if not rules["walls_closed"]:
      outside = lab == I.OUTSIDE
      lab[outside & ndimage.binary_dilation(np.isin(lab, ROOM), I.FOUR)] = I.EXT_WALL
    if not (rules["room_has_furniture"] and rules["furniture_placed"]):
      _one_type_per_room(lab)
    if not I.rules(lab)["furniture_placed"]:
      _clear_misplaced(lab)
    if not I.rules(lab)["rooms_reachable"]:
      _doors(lab, rng)
    if not I.rules(lab)["room_has_furniture"]:
      _furnish(lab, rng)
    if (lab == before).all():
      break
  return lab


def _wall_lines(lab: np.ndarray):
  """Per pixel: wall-or-opening on both sides along a row / along a column, and wall on both sides."""
  pad = np.pad(lab, 1, constant_values=I.OUTSIDE)
  up, down, left, right = pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]
  wallish = lambda a: np.isin(a, I.WALLS + I.OPENINGS)  # noqa: E731
  wall = lambda a: np.isin(a, I.WALLS)  # noqa: E731
  in_row = wallish(left) & wallish(right) & ~wall(up) & ~wall(down)
  in_col = wallish(up) & wallish(down) & ~wall(left) & ~wall(right)
  return in_row, in_col, (up, down, left, right)


def _fix_openings(lab: np.ndarray) -> None:
  in_row, in_col, _ = _wall_lines(lab)
  bad = np.isin(lab, I.OPENINGS) & ~(in_row | in_col)
  near_wall = ndimage.binary_dilation(np.isin(lab, I.WALLS), I.FOUR)
  for y, x in np.argwhere(bad):
    if near_wall[y, x]:
      lab[y, x] = I.EXT_WALL if _touches(lab, y, x, I.OUTSIDE) else I.INT_WALL
    else:
      lab[y, x] = _floor_near(lab, y, x)


def _touches(lab, y, x, value) -> bool:
  n0, n1 = lab.shape
  return any(
    0 <= y + dy < n0 and 0 <= x + dx < n1 and lab[y + dy, x + dx] == value
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))
  )


def _floor_near(lab, y, x) -> int:
  win = lab[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
  floors = win[np.isin(win, I.FLOORS)]
  return int(np.bincount(floors).argmax()) if floors.size else I.OUTSIDE


def _one_type_per_room(lab: np.ndarray) -> None:
  """Rooms of mixed floor: patches of one type under ``PATCH`` px take the type around them; larger
  patches of different types are parted by an interior wall on the smaller patch's side of their border."""
  for _ in range(2):  # retyping a patch can join two large ones: once more for their wall
    rooms, _ = ndimage.label(np.isin(lab, ROOM), I.FOUR)
    for r, sl in enumerate(ndimage.find_objects(rooms), start=1):
      if sl is None:
        continue
      sub = lab[sl]
      mine = rooms[sl] == r
      floor = sub[mine & np.isin(sub, I.FLOORS)]
      if not floor.size or (floor == floor[0]).all():
        continue
      patches = []
      for t in np.unique(floor):
        comp, n = ndimage.label(mine & (sub == t), I.FOUR)
        for c in range(1, n + 1):
          patches.append((int((comp == c).sum()), int(t), comp == c))
      big = [p for p in patches if p[0] >= PATCH]
      if not big:
        big = [max(patches, key=lambda p: p[0])]
      for size, t, m in patches:
        if size < PATCH and (size, t) not in [(b[0], b[1]) for b in big]:
          ring = ndimage.binary_dilation(m, I.FOUR) & ~m & np.isin(sub, I.FLOORS)
          around = sub[ring]
          sub[m] = int(np.bincount(around).argmax()) if around.size else int(np.bincount(floor).argmax())
      big.sort(key=lambda p: p[0])
      for i, (_, t, m) in enumerate(big):
        others = np.zeros_like(m)
        for _, u, o in big[i + 1 :]:
          if u != t:
            others |= o
        sub[m & ndimage.binary_dilation(others, I.FOUR)] = I.INT_WALL


def _clear_misplaced(lab: np.ndarray) -> None:
  furn = np.isin(lab, I.FURNITURE)
  door = lab == I.DOOR
  bad = ndimage.binary_dilation(np.isin(lab, (I.OUTSIDE, I.DOOR, I.WINDOW)), I.FOUR) & furn
  bad |= ndimage.binary_dilation(door, I.FOUR) & ~door & furn
  for y, x in np.argwhere(bad):
    f = _floor_near(lab, y, x)
    lab[y, x] = f if f != I.OUTSIDE else I.INT_WALL
  # A piece between two rooms' floors: its pixels beside the smaller side's floor continue their wall.
  pieces, _ = ndimage.label(np.isin(lab, I.FURNITURE), I.FOUR)
  for p, sl in enumerate(ndimage.find_objects(pieces), start=1):
    if sl is None:
      continue
    sl = tuple(slice(max(0, a.start - 1), a.stop + 1) for a in sl)
    sub, mine = lab[sl], pieces[sl] == p
    ring = ndimage.binary_dilation(mine, I.FOUR) & ~mine & np.isin(sub, I.FLOORS)
    kinds = np.bincount(sub[ring], minlength=len(I.CLASS_NAMES))
    if (kinds > 0).sum() > 1:
      keep = int(kinds.argmax())
      other = ring & (sub != keep)
      sub[mine & ndimage.binary_dilation(other, I.FOUR)] = I.INT_WALL


def _door_spots(lab: np.ndarray, rooms: np.ndarray):
  """Wall pixels a door can open in: wall-or-opening both sides along a line, a room or garden across it.

  Returns ``{(a, b): [(y, x, axis), ...]}`` keyed by the room ids (0 = garden) on either side.
  """
  in_row, in_col, _ = _wall_lines(lab)
  pad = np.pad(rooms, 1, constant_values=0)
  ids = {"row": (pad[:-2, 1:-1], pad[2:, 1:-1]), "col": (pad[1:-1, :-2], pad[1:-1, 2:])}
  out: dict = {}
  wall = np.isin(lab, I.WALLS)
  for axis, line in (("row", in_row), ("col", in_col)):
    a, b = ids[axis]
    for y, x in np.argwhere(wall & line & ((a > 0) | (b > 0))):
      key = tuple(sorted((int(a[y, x]), int(b[y, x]))))
      if key[0] == key[1]:
        continue
      out.setdefault(key, []).append((int(y), int(x), axis))
  return out


def _open_door(lab: np.ndarray, cells, rng) -> bool:
  """A 2-px door on two neighbouring cells of one wall line; furniture in its clearance becomes floor."""
  cells = set(cells)
  pairs = []
  for y, x, axis in cells:
    nxt = (y, x + 1, axis) if axis == "row" else (y + 1, x, axis)
    if nxt in cells:
      pairs.append(((y, x), nxt[:2]))
  if not pairs:
    return False
  p, q = pairs[int(rng.integers(len(pairs)))]
  for y, x in (p, q):
    lab[y, x] = I.DOOR
  door = lab == I.DOOR
  clear = ndimage.binary_dilation(door, I.FOUR) & ~door & np.isin(lab, I.FURNITURE)
  for y, x in np.argwhere(clear):
    lab[y, x] = _floor_near(lab, y, x)
  return True


def _doors(lab: np.ndarray, rng) -> None:
  room_px = np.isin(lab, ROOM)
  rooms, k = ndimage.label(room_px, I.FOUR)
  if not k:
    return
  door = lab == I.DOOR
  front = door & ndimage.binary_dilation(lab == I.OUTSIDE, I.FOUR)
  if not front.any():
    spots = _door_spots(lab, rooms)
    types = {r: I._room_type(lab, rooms == r) for r in range(1, k + 1)}
    sizes = np.bincount(rooms.ravel())
    order = sorted(range(1, k + 1), key=lambda r: (types[r] not in (I.LIVING, I.CORRIDOR), -sizes[r]))
    for r in order:
      if _open_door(lab, spots.get((0, r), []), rng):
        break
  for _ in range(k):  # each round joins at least one room or stops
    door = lab == I.DOOR
    front = door & ndimage.binary_dilation(lab == I.OUTSIDE, I.FOUR)
    passable = np.isin(lab, ROOM) | door
    comp, _ = ndimage.label(passable, I.FOUR)
    ids = np.unique(comp[front])
    reached_px = np.isin(comp, ids[ids > 0])
    rooms, k = ndimage.label(np.isin(lab, ROOM), I.FOUR)
    reached = set(np.unique(rooms[reached_px & (rooms > 0)])) - {0}
    if len(reached) == k or not reached:
      return
    spots = _door_spots(lab, rooms)
    joined = False
    for (a, b), cells in sorted(spots.items()):
      if a and ((a in reached) != (b in reached)) and _open_door(lab, cells, rng):
        joined = True
        break
    if not joined:
      return


def _furnish(lab: np.ndarray, rng) -> None:
  rooms, _ = ndimage.label(np.isin(lab, ROOM), I.FOUR)
  door = lab == I.DOOR
  clear = ndimage.binary_dilation(door, I.FOUR, iterations=2) | ndimage.binary_dilation(lab == I.WINDOW, I.FOUR)
  for r, sl in enumerate(ndimage.find_objects(rooms), start=1):
    if sl is None:
      continue
    mine = rooms == r
    kind = I._room_type(lab, mine)
    need = I.DEFINING.get(kind)
    if not need or np.isin(lab[mine], need).any():
      continue
    piece, h, w = PIECE[kind]
    free = mine & np.isin(lab, I.FLOORS) & ~clear
    _place_in(lab, free, mine, piece, h, w, rng)


def _place_in(lab, free, room, piece, h, w, rng) -> bool:
  """``piece`` (h x w, either way round) on free floor of ``room``, touching its wall where it can."""
  edge = room & ~ndimage.binary_erosion(room, I.FOUR, border_value=0)
  best = []
  for hh, ww in {(h, w), (w, h)}:
    if hh > lab.shape[0] or ww > lab.shape[1]:
      continue
    fits = np.lib.stride_tricks.sliding_window_view(free, (hh, ww)).all(axis=(-2, -1))
    for y, x in np.argwhere(fits):
      best.append((int(edge[y : y + hh, x : x + ww].sum()), int(y), int(x), hh, ww))
  if not best:
    return False
  top = max(b[0] for b in best)
  choice = [b for b in best if b[0] == top]
  _, y, x, hh, ww = choice[int(rng.integers(len(choice)))]
  lab[y : y + hh, x : x + ww] = piece
  return True
