"""The ``characters`` world: front-view game-character sprites.

A figure of varying build (head, torso, arms, legs, shoes) with skin, hair
(short, long or bald, and a fringe), shirt and trousers colours drawn from
palettes, and an optional accessory (hat, belt or held staff), on a plain
background. No height map: the scene's height slot holds zeros.

Validity rules (real sprites satisfy each exactly; generated ones are allowed
``TOLERANCE`` of violating pixels):

* ``one_figure``: the figure is one connected shape.
* ``parts_in_order``: hair/head above shirt above trousers above shoes.
* ``symmetric_body``: the body (skin, shirt, trousers, shoes) mirrors itself.
* ``has_parts``: skin, shirt and trousers are all present.
* ``centred``: the figure stands in the middle of the frame.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base

BACKGROUND, SKIN, HAIR, SHIRT, PANTS, SHOES, ACCESSORY = range(7)
TOLERANCE = 0.03
_WORLD_ID = 4004
_EIGHT = ndimage.generate_binary_structure(2, 2)
_SKINS = np.array([[255, 224, 189], [234, 192, 134], [198, 134, 66], [141, 85, 36], [92, 58, 32]], np.float32)
_HAIRS = np.array(
  [[20, 20, 20], [90, 56, 37], [200, 160, 80], [170, 60, 30], [220, 220, 220], [60, 90, 200]], np.float32
)
_CLOTH = np.array(
  [[200, 40, 40], [40, 90, 200], [40, 150, 60], [230, 200, 50], [120, 60, 160], [240, 240, 240], [50, 50, 60]],
  np.float32,
)


class CharactersWorld:
  """Front-view sprites: background, skin, hair, shirt, trousers, shoes, accessory."""

  name = "characters"
  version = 1
  class_names = ("background", "skin", "hair", "shirt", "trousers", "shoes", "accessory")
  palette = np.array(
    [[228, 232, 238], [234, 192, 134], [90, 56, 37], [200, 40, 40], [40, 90, 200], [50, 40, 30], [230, 200, 50]],
    np.uint8,
  )
  scene_class_names = ("plain", "hat", "staff")
  rule_names = ("one_figure", "parts_in_order", "symmetric_body", "has_parts", "centred")
  stat_names = (
    "frac_skin",
    "frac_hair",
    "frac_shirt",
    "frac_trousers",
    "frac_shoes",
    "frac_accessory",
    "figure_height",
    "figure_width",
    "head_to_height",
  )
  min_size = 16
  ground = None  # sprites
  sprites = True  # one item per frame: a scene larger than the frame is not a place (no --scene_size)

  def generate(self, seed: int, size: int) -> base.Scene:
    return base.rejection_sample(self, self._draw, _WORLD_ID, seed, size)

  def _draw(self, rng, r):
    lab = np.zeros((r, r), np.uint8)
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float32)
    cx = (r - 1) / 2.0
    u = r / 32.0
    top = r * rng.uniform(0.06, 0.14)
    height = r * rng.uniform(0.78, 0.88) - top + r * 0.06
    head_r = height * rng.uniform(0.11, 0.14)
    head_cy = top + head_r
    build = rng.uniform(0.8, 1.25)
    torso_top = head_cy + head_r * 0.9
    torso_bot = torso_top + height * 0.33
    torso_w = head_r * 1.5 * build
    leg_bot = top + height
    leg_w = max(1.0, torso_w * 0.42)
    gap = max(0.5, torso_w * 0.12)
    arm_w = max(1.0, head_r * 0.45 * build)
    shoe_h = max(1.0, height * 0.05)
    # Body parts, drawn back to front.
    legs = (yy >= torso_bot) & (yy < leg_bot) & (np.abs(xx - cx) >= gap) & (np.abs(xx - cx) < gap + leg_w)
    torso = (yy >= torso_top) & (yy < torso_bot) & (np.abs(xx - cx) < torso_w)
    arms = (
      (yy >= torso_top + u)
      & (yy < torso_bot + height * 0.06)
      & (np.abs(xx - cx) >= torso_w)
      & (np.abs(xx - cx) < torso_w + arm_w)
    )
    sleeves = arms & (yy < torso_top + (torso_bot - torso_top) * rng.uniform(0.3, 0.9))
    shoes = legs & (yy >= leg_bot - shoe_h)
    neck = (yy >= head_cy) & (yy < torso_top + 1) & (np.abs(xx - cx) < head_r * 0.4)
    head = (yy - head_cy) ** 2 + (xx - cx) ** 2 <= head_r**2
    lab[arms] = SKIN
    lab[sleeves] = SHIRT
    lab[legs] = PANTS
    lab[shoes] = SHOES
    lab[torso] = SHIRT
    lab[neck | head] = SKIN
    style = int(rng.integers(3))  # 0 short, 1 long, 2 bald (with a fringe)
    if style != 2:
      cap = head & (yy < head_cy - head_r * rng.uniform(0.1, 0.4))
      lab[cap] = HAIR
      if style == 1:
        long = (
          (yy >= head_cy - head_r * 0.2)
          & (yy < head_cy + head_r * 2.0)
          & (np.abs(xx - cx) >= head_r * 0.75)
          & (np.abs(xx - cx) < head_r * 1.15)
        )
        lab[long & (lab == BACKGROUND)] = HAIR
    kind = int(rng.choice(3, p=[0.5, 0.3, 0.2]))
    if kind == 1:  # a hat on top of the head
      brim = (np.abs(yy - (top - head_r * 0.05)) < max(1.0, head_r * 0.2)) & (np.abs(xx - cx) < head_r * 1.5)
      crown = (yy < top) & (yy >= top - head_r * 0.9) & (np.abs(xx - cx) < head_r * 0.9)
      lab[brim | crown] = ACCESSORY
    elif kind == 2:  # a staff held in one hand, touching the arm
      side = 1 if rng.random() < 0.5 else -1
      sx = cx + side * (torso_w + arm_w * 0.5)
      staff = (np.abs(xx - sx) < max(0.6, u * 0.6)) & (yy >= torso_top - height * 0.1) & (yy < leg_bot)
      lab[staff & (lab == BACKGROUND)] = ACCESSORY
    rgb = self._render(rng, r, lab, yy, xx, cx)
    return base.Scene(rgb=rgb, labels=lab, height=np.zeros((r, r), np.float32), scene_class=kind)

  def _render(self, rng, r, lab, yy, xx, cx):
    bg = np.array([228, 232, 238], np.float32) * rng.uniform(0.85, 1.05)
    colours = np.stack(
      [
        bg,
        _SKINS[rng.integers(len(_SKINS))],
        _HAIRS[rng.integers(len(_HAIRS))],
        _CLOTH[rng.integers(len(_CLOTH))],
        _CLOTH[rng.integers(len(_CLOTH))],
        np.array([50, 40, 30], np.float32) * rng.uniform(0.6, 1.6),
        _CLOTH[rng.integers(len(_CLOTH))] * 0.8,
      ]
    )
    rgb = colours[lab] / 255.0
    # Soft light from the upper left and a darker outline, as sprites have.
    fig = lab != BACKGROUND
    light = 1.05 - 0.25 * (xx - cx) / r - 0.15 * yy / r
    rgb[fig] *= light[fig][:, None]
    edge = fig & ~ndimage.binary_erosion(fig)
    rgb[edge] *= 0.6
    rgb += rng.normal(0, 0.015, rgb.shape).astype(np.float32)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)

  def validity(self, labels, height=None) -> dict[str, bool]:
    tol = TOLERANCE
    r = labels.shape[0]
    fig = labels != BACKGROUND
    out = {}
    if fig.any():
      lab, n = ndimage.label(fig, _EIGHT)
      largest = ndimage.sum_labels(fig, lab, np.arange(1, n + 1)).max()
      out["one_figure"] = bool(largest >= (1 - tol) * fig.sum())
    else:
      out["one_figure"] = False
    rows = np.arange(r)[:, None] * np.ones((1, r))
    med = {c: float(np.median(rows[labels == c])) for c in (SKIN, HAIR, SHIRT, PANTS, SHOES) if (labels == c).any()}
    order = [c for c in (SHIRT, PANTS, SHOES) if c in med]
    ok = all(med[a] < med[b] for a, b in zip(order, order[1:]))
    if HAIR in med and SHIRT in med:
      ok = ok and med[HAIR] < med[SHIRT]
    out["parts_in_order"] = bool(ok)
    body = np.isin(labels, (SKIN, SHIRT, PANTS, SHOES))
    inter = (body & body[:, ::-1]).sum()
    union = (body | body[:, ::-1]).sum()
    out["symmetric_body"] = bool(union > 0 and inter >= (1 - 4 * tol) * union)
    out["has_parts"] = bool(all((labels == c).mean() >= 0.005 for c in (SKIN, SHIRT, PANTS)))
    cols = np.nonzero(fig.any(0))[0]
    out["centred"] = bool(len(cols) and abs((cols[0] + cols[-1]) / 2 - (r - 1) / 2) <= 0.15 * r)
    return out

  def statistics(self, labels, height=None) -> np.ndarray:
    r = labels.shape[0]
    fr = np.bincount(labels.ravel(), minlength=7)[1:7] / labels.size
    fig = labels != BACKGROUND
    rws, cls = np.nonzero(fig.any(1))[0], np.nonzero(fig.any(0))[0]
    fh = (rws[-1] - rws[0] + 1) / r if len(rws) else 0.0
    fw = (cls[-1] - cls[0] + 1) / r if len(cls) else 0.0
    head = np.nonzero((labels == SKIN).any(1))[0]
    hh = (head[0] - rws[0]) / max(fh * r, 1) if len(head) and len(rws) else 0.0
    return np.array([*fr, fh, fw, hh], np.float32)
