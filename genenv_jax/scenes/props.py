"""The ``props`` world: item sprites with part labels, one scene class per kind of item.

Furniture (chair, table, bed, lamp, shelf), tools and weapons (sword, axe,
hammer, bow, shield) and items (potion, key, chest, coin), each drawn front
on, upright and centred with random proportions, materials and colours, on a
plain background. Parts: ``body`` (a chair's seat and back, a bottle, a
shield's face, a key's bow), ``handle`` (legs, grips, shafts, poles),
``head`` (a blade, an axe or hammer head, a lamp's shade, a key's bit, a
bow's limbs) and ``trim`` (guards, rims, locks, corks, bosses, pillows). No
height map: the scene's height slot holds zeros.

Validity rules (real props satisfy each exactly; generated ones are allowed
``TOLERANCE`` of violating pixels):

* ``one_piece``: the item is one connected shape (8-connected).
* ``inside_frame``: no item pixel on the frame's outer 1-px border.
* ``parts_attached``: every handle touches a head, body or trim, and every
  head touches a handle, body or trim (a blade on its hilt, a shade on its
  pole).
* ``body_symmetric``: the body mirrors itself about its centre column
  (every kind's body is drawn symmetric; an axe has none).
* ``has_item``: the item covers 5-75% of the frame.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base

BACKGROUND, BODY, HANDLE, HEAD, TRIM = range(5)
TOLERANCE = 0.03
_WORLD_ID = 7007
_FOUR = ndimage.generate_binary_structure(2, 1)
_EIGHT = ndimage.generate_binary_structure(2, 2)
KINDS = (
  "chair",
  "table",
  "bed",
  "lamp",
  "shelf",
  "sword",
  "axe",
  "hammer",
  "bow",
  "shield",
  "potion",
  "key",
  "chest",
  "coin",
)
_WOOD = np.array([[120, 78, 40], [150, 100, 55], [95, 60, 30], [170, 120, 70]], np.float32)
_METAL = np.array([[170, 175, 185], [130, 135, 145], [200, 200, 210]], np.float32)
_GOLD = np.array([[220, 180, 50], [200, 160, 40], [240, 200, 80]], np.float32)
_CLOTH = np.array([[180, 40, 40], [40, 90, 180], [40, 140, 70], [200, 180, 60], [120, 60, 150]], np.float32)
_GLASS = np.array([[160, 210, 230], [190, 220, 200]], np.float32)
_LIQUID = np.array([[200, 30, 40], [40, 90, 220], [60, 190, 80], [160, 60, 200]], np.float32)


class _Canvas:
  """Masks of one sprite on an n x n frame, painted part by part (later parts on top)."""

  def __init__(self, n: int):
    self.n = n
    self.labels = np.zeros((n, n), np.uint8)
    self.material = np.zeros((n, n, 3), np.float32)
    self.yy, self.xx = np.mgrid[0:n, 0:n].astype(np.float32)

  def rect(self, y0, y1, x0, x1):
    return (self.yy >= y0) & (self.yy < y1) & (self.xx >= x0) & (self.xx < x1)

  def ellipse(self, cy, cx, ry, rx):
    return ((self.yy - cy) / max(ry, 0.5)) ** 2 + ((self.xx - cx) / max(rx, 0.5)) ** 2 <= 1.0

  def paint(self, mask, part, colour):
    self.labels[mask] = part
    self.material[mask] = colour


class PropsWorld:
  """Item sprites: background, body, handle, head, trim; one scene class per kind of item."""

  name = "props"
  version = 1
  class_names = ("background", "body", "handle", "head", "trim")
  palette = np.array([[236, 232, 224], [150, 100, 55], [95, 60, 30], [170, 175, 185], [220, 180, 50]], np.uint8)
  scene_class_names = KINDS
  rule_names = ("one_piece", "inside_frame", "parts_attached", "body_symmetric", "has_item")
  stat_names = (
    "frac_body",
    "frac_handle",
    "frac_head",
    "frac_trim",
    "item_height",
    "item_width",
    "centre_row",
    "top_heavy",
  )
  min_size = 32
  ground = None  # a sprite: no heightmap
  sprites = True  # one item per frame: a scene larger than the frame is not a place (no --scene_size)

  def generate(self, seed: int, size: int) -> base.Scene:
    return base.rejection_sample(self, self._draw, _WORLD_ID, seed, size)

  def generate_class(self, seed: int, size: int, kind: int) -> base.Scene:
    """A prop of one kind (``KINDS[kind]``): the world's draw with the class fixed."""
    return base.rejection_sample(self, lambda rng, n: self._draw(rng, n, kind), _WORLD_ID + 1 + kind, seed, size)

  def _draw(self, rng, n, kind: int | None = None):
    kind = int(rng.integers(len(KINDS))) if kind is None else int(kind)
    c = _Canvas(n)
    s = n / 32.0
    cx = (n - 1) / 2 + rng.integers(-1, 2) * s * 0.5
    pick = lambda table: table[int(rng.integers(len(table)))] + rng.normal(0, 6, 3)  # noqa: E731
    getattr(self, f"_{KINDS[kind]}")(c, rng, s, cx, pick)
    rgb = self._render(rng, c)
    return base.Scene(rgb=rgb, labels=c.labels, height=np.zeros((n, n), np.float32), scene_class=kind)

  # --- furniture ---------------------------------------------------------------------------------
  def _chair(self, c, rng, s, cx, pick):
    w, seat, back = rng.uniform(7, 10) * s, rng.uniform(16, 19) * s, rng.uniform(5, 9) * s
    wood, cloth = pick(_WOOD), pick(_CLOTH)
    top = seat - back - 3 * s
    c.paint(c.rect(top, seat, cx - w, cx + w + 1), BODY, cloth)  # back rest
    c.paint(c.rect(seat, seat + 2.5 * s, cx - w - 1, cx + w + 2), BODY, wood)  # seat
    for x in (cx - w, cx + w - 1.5 * s):
      c.paint(c.rect(seat + 2.5 * s, 28 * s, x, x + 2.2 * s), HANDLE, wood)  # legs

  def _table(self, c, rng, s, cx, pick):
    w, top = rng.uniform(10, 13) * s, rng.uniform(11, 15) * s
    wood = pick(_WOOD)
    c.paint(c.rect(top, top + 3 * s, cx - w, cx + w + 1), BODY, wood)
    for x in (cx - w + s, cx + w - 2 * s):
      c.paint(c.rect(top + 3 * s, 27 * s, x, x + 2.2 * s), HANDLE, wood * 0.85)

  def _bed(self, c, rng, s, cx, pick):
    w, top = rng.uniform(11, 13.5) * s, rng.uniform(12, 16) * s
    wood, cloth = pick(_WOOD), pick(_CLOTH)
    c.paint(c.rect(top - 5 * s, 24 * s, cx - w, cx + w + 1), BODY, wood)  # head board
    c.paint(c.rect(top, 22 * s, cx - w + 2 * s, cx + w - 1 * s), BODY, cloth)  # blanket
    c.paint(c.ellipse(top + 0.5 * s, cx, 1.8 * s, w * 0.6), TRIM, np.array([235, 235, 240.0]))  # pillow
    for x in (cx - w, cx + w - 1.5 * s):
      c.paint(c.rect(24 * s, 27 * s, x, x + 2.5 * s), HANDLE, wood * 0.8)

  def _lamp(self, c, rng, s, cx, pick):
    shade_w, shade_top = rng.uniform(5, 8) * s, rng.uniform(4, 8) * s
    c.paint(c.rect(shade_top + 6 * s, 25 * s, cx - 1, cx + 2), HANDLE, pick(_METAL))  # pole
    for i in range(int(6 * s)):
      half = shade_w * (0.55 + 0.45 * i / (6 * s))
      c.paint(c.rect(shade_top + i, shade_top + i + 1, cx - half, cx + half + 1), HEAD, pick(_CLOTH) * 0 + 1)
    c.material[c.labels == HEAD] = pick(_CLOTH)
    c.paint(c.rect(25 * s, 27 * s, cx - 5 * s, cx + 5 * s + 1), BODY, pick(_METAL))  # base

  def _shelf(self, c, rng, s, cx, pick):
    w, top = rng.uniform(9, 12) * s, rng.uniform(3, 6) * s
    wood = pick(_WOOD)
    c.paint(c.rect(top, 28 * s, cx - w, cx + w + 1), BODY, wood * 0.7)  # back panel
    for y in np.linspace(top, 26 * s, int(rng.integers(3, 5))):
      c.paint(c.rect(y, y + 1.5 * s, cx - w, cx + w + 1), TRIM, wood)  # boards

  # --- tools and weapons -------------------------------------------------------------------------
  def _sword(self, c, rng, s, cx, pick):
    blade_w, tip = rng.uniform(1.5, 2.5) * s, rng.uniform(2, 5) * s
    guard_y = rng.uniform(19, 22) * s
    for y in range(int(tip), int(guard_y) + 1):
      half = blade_w * min(1.0, (y - tip + 1) / (3 * s))
      c.paint(c.rect(y, y + 1, cx - half, cx + half + 1), HEAD, pick(_METAL))
    c.paint(c.rect(guard_y, guard_y + 2 * s, cx - 5 * s, cx + 5 * s + 1), TRIM, pick(_GOLD))
    c.paint(c.rect(guard_y + 2 * s, 28 * s, cx - 1, cx + 2), HANDLE, pick(_WOOD))
    c.paint(c.ellipse(28.5 * s, cx + 0.5, 1.2 * s, 1.5 * s), TRIM, pick(_GOLD))

  def _axe(self, c, rng, s, cx, pick):
    top = rng.uniform(3, 6) * s
    c.paint(c.rect(top, 28 * s, cx - 1, cx + 2), HANDLE, pick(_WOOD))
    hw, hh = rng.uniform(6, 9) * s, rng.uniform(4, 6) * s
    blade = c.ellipse(top + hh, cx + 1.5, hh, hw) & (c.xx >= cx + 2)
    c.paint(blade, HEAD, pick(_METAL))

  def _hammer(self, c, rng, s, cx, pick):
    top = rng.uniform(4, 7) * s
    hw, hh = rng.uniform(5, 8) * s, rng.uniform(3, 5) * s
    c.paint(c.rect(top + hh, 28 * s, cx - 1, cx + 2), HANDLE, pick(_WOOD))
    c.paint(c.rect(top, top + hh, cx - hw, cx + hw + 1), HEAD, pick(_METAL))

  def _bow(self, c, rng, s, cx, pick):
    r, cy = rng.uniform(10, 13) * s, rng.uniform(17, 20) * s
    arc = c.ellipse(cy, cx, r * 0.8, r) & ~c.ellipse(cy, cx, r * 0.8 - 2 * s, r - 2 * s) & (c.yy <= cy)
    c.paint(arc, HEAD, pick(_WOOD))
    c.paint(c.rect(cy - 3 * s, cy + 1, cx - 1.5 * s, cx + 1.5 * s + 1), HANDLE, pick(_CLOTH))  # grip
    c.paint(c.rect(cy - r * 0.8, cy - r * 0.8 + 2.5 * s, cx - 1.5 * s, cx + 1.5 * s + 1), HANDLE, pick(_CLOTH))
    c.paint(c.rect(cy, cy + 1, cx - r + 1, cx + r), TRIM, np.array([230, 230, 220.0]))  # string
    c.labels[(c.labels == HANDLE) & (c.yy > cy - r * 0.8 + 3 * s) & (c.yy < cy - 3 * s)] = HEAD

  def _shield(self, c, rng, s, cx, pick):
    w, top = rng.uniform(9, 12) * s, rng.uniform(4, 6) * s
    body = c.rect(top, 16 * s, cx - w, cx + w + 1) | (
      c.ellipse(16 * s, cx, 11 * s, w) & (c.yy >= 16 * s) & (c.yy < 28 * s)
    )
    c.paint(body, BODY, pick(_CLOTH))
    c.paint(c.ellipse(15 * s, cx, 2.5 * s, 2.5 * s), TRIM, pick(_GOLD))

  # --- items -------------------------------------------------------------------------------------
  def _potion(self, c, rng, s, cx, pick):
    r = rng.uniform(6, 9) * s
    cy = 27 * s - r
    c.paint(c.ellipse(cy, cx, r, r) | c.rect(cy - r - 5 * s, cy, cx - 2 * s, cx + 2 * s + 1), BODY, pick(_GLASS))
    liquid = c.ellipse(cy, cx, r - 1.5 * s, r - 1.5 * s) & (c.yy >= cy - r * 0.2)
    c.paint(liquid, HEAD, pick(_LIQUID))
    c.paint(c.rect(cy - r - 8 * s, cy - r - 5 * s, cx - 1.5 * s, cx + 1.5 * s + 1), TRIM, pick(_WOOD))  # cork

  def _key(self, c, rng, s, cx, pick):
    r, top = rng.uniform(4, 5.5) * s, rng.uniform(3, 5) * s
    gold = pick(_GOLD)
    ring = c.ellipse(top + r, cx, r, r) & ~c.ellipse(top + r, cx, r - 2 * s, r - 2 * s)
    c.paint(ring, BODY, gold)
    c.paint(c.rect(top + 2 * r - 0.5, 28 * s, cx - 1, cx + 2), HANDLE, gold * 0.9)
    for y in (24 * s, 26.5 * s):
      c.paint(c.rect(y, y + 1.5 * s, cx + 2, cx + 2 + rng.uniform(3, 5) * s), HEAD, gold * 0.9)

  def _chest(self, c, rng, s, cx, pick):
    w, top = rng.uniform(10, 13) * s, rng.uniform(9, 13) * s
    wood = pick(_WOOD)
    c.paint(c.ellipse(top + 4 * s, cx, 4 * s, w) & (c.yy < top + 4 * s), BODY, wood * 1.1)  # lid
    c.paint(c.rect(top + 4 * s, 27 * s, cx - w, cx + w + 1), BODY, wood)
    c.paint(c.rect(top + 3.5 * s, top + 5 * s, cx - w, cx + w + 1), TRIM, pick(_METAL))  # band
    c.paint(c.rect(top + 5 * s, top + 9 * s, cx - 1.5 * s, cx + 1.5 * s + 1), TRIM, pick(_GOLD))  # lock

  def _coin(self, c, rng, s, cx, pick):
    r = rng.uniform(8, 12) * s
    cy = 15.5 * s
    gold = pick(_GOLD)
    c.paint(c.ellipse(cy, cx, r, r), TRIM, gold * 0.85)  # rim
    c.paint(c.ellipse(cy, cx, r - 2 * s, r - 2 * s), BODY, gold)

  def _render(self, rng, c):
    """Flat materials lit from the upper left, a darker outline, on a plain background."""
    n = c.n
    bg = np.array([236, 232, 224.0]) + rng.normal(0, 8, 3)
    obj = c.labels != BACKGROUND
    light = 1.1 - 0.25 * (c.xx + c.yy) / (2 * n)
    rgb = np.where(obj[..., None], c.material * light[..., None], bg)
    edge = obj & ~ndimage.binary_erosion(obj, _FOUR)
    rgb[edge] *= 0.7
    rgb += rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).round().astype(np.uint8)

  # --- rules and statistics ----------------------------------------------------------------------
  def validity(self, labels: np.ndarray, height: np.ndarray | None = None) -> dict[str, bool]:
    tol = TOLERANCE
    obj = labels != BACKGROUND
    total = max(int(obj.sum()), 1)
    comp, k = ndimage.label(obj, _EIGHT)
    sizes = np.bincount(comp.ravel())[1:] if k else np.zeros(1)
    out = {"one_piece": bool(k >= 1 and sizes.max() >= (1 - tol) * total)}
    border = obj[0, :].sum() + obj[-1, :].sum() + obj[:, 0].sum() + obj[:, -1].sum()
    out["inside_frame"] = bool(border <= tol * total)
    loose = 0
    for part, partners in ((HANDLE, (HEAD, BODY, TRIM)), (HEAD, (HANDLE, BODY, TRIM))):
      pl, pk = ndimage.label(labels == part, _FOUR)
      if not pk:
        continue
      near = ndimage.binary_dilation(np.isin(labels, partners), _FOUR)
      held = np.unique(pl[near & (pl > 0)])
      loose += int(((pl > 0) & ~np.isin(pl, held)).sum())
    out["parts_attached"] = bool(loose <= tol * total)
    body = labels == BODY
    if body.sum():
      cols = np.nonzero(body.any(0))[0]
      centre2 = cols.min() + cols.max()  # twice the centre column
      ys, xs = np.nonzero(body)
      mirrored = np.zeros_like(body)
      mx = centre2 - xs
      ok = (mx >= 0) & (mx < body.shape[1])
      mirrored[ys[ok], mx[ok]] = True
      inter, union = (body & mirrored).sum(), (body | mirrored).sum()
      out["body_symmetric"] = bool(inter >= 0.85 * union)
    else:
      out["body_symmetric"] = True
    out["has_item"] = bool(0.05 <= obj.mean() <= 0.75)
    return out

  def statistics(self, labels: np.ndarray, height: np.ndarray | None = None) -> np.ndarray:
    n = labels.shape[0]
    fr = np.bincount(labels.ravel(), minlength=5)[1:5] / labels.size
    obj = labels != BACKGROUND
    if not obj.any():
      return np.array([*fr, 0, 0, 0, 0], np.float32)
    rows, cols = np.nonzero(obj.any(1))[0], np.nonzero(obj.any(0))[0]
    ys = np.nonzero(obj)[0]
    mid = (rows.min() + rows.max()) / 2
    top_heavy = float((ys < mid).mean())
    return np.array(
      [*fr, (rows.max() - rows.min() + 1) / n, (cols.max() - cols.min() + 1) / n, ys.mean() / n, top_heavy],
      np.float32,
    )


def _descriptor(labels: np.ndarray) -> np.ndarray:
  """Part layout at 8x8: the share of each part per cell, flattened (what the class check compares)."""
  n = labels.shape[0]
  f = n // 8
  onehot = np.stack([labels == p for p in (BODY, HANDLE, HEAD, TRIM)], -1).astype(np.float32)
  return onehot.reshape(8, f, 8, f, 4).mean((1, 3)).ravel()


class KindClassifier:
  """Nearest-centroid classifier of a prop's kind from its part layout, fitted on real props (seeded).

  Used to check that a class-conditional model draws the kind it was asked for.
  """

  def __init__(self, size: int = 32, per_kind: int = 40, seed: int = 3 * 10**9):
    w = PropsWorld()
    self.centroids = np.stack(
      [np.mean([_descriptor(w.generate_class(seed + i, size, k).labels) for i in range(per_kind)], 0)
       for k in range(len(KINDS))]
    )  # fmt: skip

  def predict(self, labels: np.ndarray) -> np.ndarray:
    """[n, h, w] label maps (or one [h, w]) -> kind indices."""
    lab = np.asarray(labels)
    many = lab.ndim == 3
    d = np.stack([_descriptor(x) for x in (lab if many else lab[None])])
    out = ((d[:, None] - self.centroids[None]) ** 2).sum(-1).argmin(-1)
    return out if many else int(out[0])
