"""The ``characters`` world: game-character sprites: people, animals and robots.

Six scene classes, each a kind of figure with its own parts (label classes):

* ``plain``, ``hat``, ``staff``: a person seen from the front, of varying
  build (head, torso, arms, legs, shoes), with skin, hair (short, long or
  bald), shirt and trousers colours drawn from palettes, and an optional
  accessory (a hat or a held staff). Parts: skin, hair, shirt, trousers,
  shoes, accessory.
* ``animal_quadruped``: a four-legged animal seen from the side (facing left
  or right), of varying length, leg length, neck and tail. Parts: fur (body,
  head and ears) and animal limbs (legs and tail).
* ``animal_bird``: a standing bird seen from the side. Parts: fur (body and
  head, the feathers), wing (the folded wing and tail feathers), beak and
  animal limbs (the legs).
* ``robot``: a robot seen from the front: a box head with an antenna, a box
  torso, jointed arms and legs, feet. Parts: metal (head, torso, feet),
  joint (arms and legs) and light (eyes, antenna tip, chest lamp).

On a plain background. No height map: the scene's height slot holds zeros.

Validity rules (real sprites satisfy each exactly; generated ones are allowed
``TOLERANCE`` of violating pixels). The figure's kind is read from its parts
(person, quadruped, bird or robot):

* ``one_figure``: the figure is one connected shape.
* ``one_kind``: the figure's parts belong to one kind (no robot arm on a
  person, no beak on a dog).
* ``parts_in_order``: a person's hair above shirt above trousers above shoes;
  an animal's body above its legs (a bird's beak above its legs too); a
  robot's lights above its joints' middle and its feet at the bottom.
* ``symmetric_body``: people and robots (front views) mirror themselves;
  side views (animals) are not judged.
* ``has_parts``: the kind's defining parts are all present (a person: skin,
  shirt and trousers; a quadruped: fur and limbs; a bird: fur, wing, beak
  and legs; a robot: metal, joints and lights).
* ``centred``: the figure stands in the middle of the frame.

Version 2 added the animals and robots (version 1: people only, 7 classes).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.scenes import base

BACKGROUND, SKIN, HAIR, SHIRT, PANTS, SHOES, ACCESSORY, FUR, LIMBS, WING, BEAK, METAL, JOINT, LIGHT = range(14)
PERSON, QUADRUPED, BIRD, ROBOT = range(4)  # figure kinds; scene classes 0-2 are people, 3-5 the others
KIND_PARTS = {
  PERSON: (SKIN, HAIR, SHIRT, PANTS, SHOES, ACCESSORY),
  QUADRUPED: (FUR, LIMBS),
  BIRD: (FUR, WING, BEAK, LIMBS),
  ROBOT: (METAL, JOINT, LIGHT),
}
KIND_OF_CLASS = {
  "plain": PERSON,
  "hat": PERSON,
  "staff": PERSON,
  "animal_quadruped": QUADRUPED,
  "animal_bird": BIRD,
  "robot": ROBOT,
}  # scene class -> the figure kind it draws
_FURS = np.array(
  [[120, 80, 45], [180, 140, 90], [60, 50, 45], [230, 225, 215], [200, 120, 50], [140, 140, 140]], np.float32
)
_FEATHERS = np.array([[60, 110, 190], [200, 60, 40], [240, 200, 60], [90, 150, 70], [70, 60, 60]], np.float32)
_METALS = np.array([[170, 175, 185], [120, 130, 150], [200, 170, 90], [90, 120, 110]], np.float32)
_LIGHTS = np.array([[80, 230, 255], [255, 80, 60], [120, 255, 120]], np.float32)
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
  """Sprites of people (front), animals (side) and robots (front) on a plain background."""

  name = "characters"
  version = 2
  class_names = (
    "background", "skin", "hair", "shirt", "trousers", "shoes", "accessory",
    "fur", "animal_limbs", "wing", "beak", "metal", "joint", "light",
  )  # fmt: skip
  palette = np.array(
    [[228, 232, 238], [234, 192, 134], [90, 56, 37], [200, 40, 40], [40, 90, 200], [50, 40, 30], [230, 200, 50],
     [150, 105, 60], [95, 65, 40], [60, 110, 190], [245, 160, 30], [160, 165, 175], [80, 85, 95], [80, 230, 255]],
    np.uint8,
  )  # fmt: skip
  scene_class_names = ("plain", "hat", "staff", "animal_quadruped", "animal_bird", "robot")
  rule_names = ("one_figure", "one_kind", "parts_in_order", "symmetric_body", "has_parts", "centred")
  stat_names = (
    *(f"frac_{c}" for c in class_names[1:]),
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
    scene_class = int(rng.choice(6, p=[0.25, 0.15, 0.1, 1 / 6, 1 / 6, 1 / 6]))
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float32)
    if scene_class < 3:
      lab = self._person(rng, r, scene_class, yy, xx)
    else:
      lab = (self._quadruped, self._bird, self._robot)[scene_class - 3](rng, r, yy, xx)
    rgb = self._render(rng, r, lab, yy, xx, (r - 1) / 2.0)
    return base.Scene(rgb=rgb, labels=lab, height=np.zeros((r, r), np.float32), scene_class=scene_class)

  def _person(self, rng, r, kind, yy, xx):
    lab = np.zeros((r, r), np.uint8)
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
    if kind == 1:  # a hat on top of the head
      brim = (np.abs(yy - (top - head_r * 0.05)) < max(1.0, head_r * 0.2)) & (np.abs(xx - cx) < head_r * 1.5)
      crown = (yy < top) & (yy >= top - head_r * 0.9) & (np.abs(xx - cx) < head_r * 0.9)
      lab[brim | crown] = ACCESSORY
    elif kind == 2:  # a staff held in one hand, touching the arm
      side = 1 if rng.random() < 0.5 else -1
      sx = cx + side * (torso_w + arm_w * 0.5)
      staff = (np.abs(xx - sx) < max(0.6, u * 0.6)) & (yy >= torso_top - height * 0.1) & (yy < leg_bot)
      lab[staff & (lab == BACKGROUND)] = ACCESSORY
    return lab

  def _quadruped(self, rng, r, yy, xx):
    """Side view: an elliptic body on four legs, a head on a neck at the front, ears, a tail at the back."""
    lab = np.zeros((r, r), np.uint8)
    u = r / 32.0
    face = 1.0 if rng.random() < 0.5 else -1.0  # +1: the head on the right
    length = r * rng.uniform(0.26, 0.34)  # half the body's length
    depth = r * rng.uniform(0.11, 0.15)  # half its height
    leg_len = r * rng.uniform(0.16, 0.26)
    ground = r * rng.uniform(0.84, 0.9)
    cy = ground - leg_len - depth * 0.7
    cx = (r - 1) / 2.0 - face * r * 0.04
    body = ((xx - cx) / length) ** 2 + ((yy - cy) / depth) ** 2 <= 1.0
    leg_w = max(1.0, r * rng.uniform(0.035, 0.055))
    legs = np.zeros_like(body)
    for at in (-0.75, -0.5, 0.5, 0.75):
      lx = cx + at * length
      legs |= (np.abs(xx - lx) < leg_w / 2 + 0.01) & (yy >= cy) & (yy < ground)
    head_r = r * rng.uniform(0.08, 0.11)
    hx, hy = cx + face * (length + head_r * 0.6), cy - depth - head_r * rng.uniform(0.2, 0.9)
    head = ((xx - hx) / (head_r * 1.25)) ** 2 + ((yy - hy) / head_r) ** 2 <= 1.0
    neck = (np.abs(xx - (cx + face * length * 0.75)) < head_r * 0.7) & (yy >= hy) & (yy <= cy)
    ear = (np.abs(xx - (hx - face * head_r * 0.3)) < max(0.6, u * 0.8)) & (yy >= hy - head_r * 1.6) & (yy < hy)
    tail_x0 = cx - face * length
    t = (tail_x0 - xx) * face  # distance behind the rump
    tail_up = rng.uniform(0.3, 1.2)
    tail = (t >= -u) & (t < r * rng.uniform(0.08, 0.14)) & (np.abs(yy - (cy - depth * 0.4 - tail_up * t)) < max(0.7, u))
    lab[tail | legs] = LIMBS
    lab[body | head | neck | ear] = FUR
    return lab

  def _bird(self, rng, r, yy, xx):
    """Side view: an egg-shaped body, a round head with a beak, a folded wing, tail feathers, two thin legs."""
    lab = np.zeros((r, r), np.uint8)
    u = r / 32.0
    face = 1.0 if rng.random() < 0.5 else -1.0
    ground = r * rng.uniform(0.86, 0.92)
    leg_len = r * rng.uniform(0.12, 0.2)
    bl, bh = r * rng.uniform(0.2, 0.26), r * rng.uniform(0.15, 0.2)  # the body's half length and height
    cy = ground - leg_len - bh * 0.8
    cx = (r - 1) / 2.0 - face * r * 0.03
    body = ((xx - cx) / bl) ** 2 + ((yy - cy) / bh) ** 2 <= 1.0
    head_r = r * rng.uniform(0.09, 0.12)
    hx, hy = cx + face * bl * 0.75, cy - bh - head_r * 0.5
    head = (xx - hx) ** 2 + (yy - hy) ** 2 <= head_r**2
    beak_len = r * rng.uniform(0.07, 0.12)
    d = (xx - (hx + face * head_r * 0.8)) * face  # ahead of the face
    beak = (d >= 0) & (d < beak_len) & (np.abs(yy - hy) < head_r * 0.45 * (1 - d / beak_len) + 0.5)
    wing = ((xx - (cx - face * bl * 0.1)) / (bl * 0.75)) ** 2 + ((yy - cy + bh * 0.1) / (bh * 0.55)) ** 2 <= 1.0
    dt = (cx - face * bl * 0.8 - xx) * face  # behind the body
    tail = (dt >= -u) & (dt < r * rng.uniform(0.1, 0.16)) & (np.abs(yy - (cy - bh * 0.2 - 0.5 * dt)) < bh * 0.35)
    legs = np.zeros_like(body)
    for at in (-0.25, 0.2):
      legs |= (np.abs(xx - (cx + at * bl)) < max(0.6, u * 0.6)) & (yy >= cy) & (yy < ground)
    legs |= (yy >= ground - max(1.0, u)) & (yy < ground) & (np.abs(xx - cx) < bl * 0.5)  # the feet
    lab[legs] = LIMBS
    lab[body | head] = FUR
    lab[(wing & body) | tail] = WING
    lab[beak] = BEAK
    return lab

  def _robot(self, rng, r, yy, xx):
    """Front view: a box head with two eye lights and an antenna, a box torso with a chest lamp, jointed
    arms and legs, metal feet."""
    lab = np.zeros((r, r), np.uint8)
    u = r / 32.0
    cx = (r - 1) / 2.0
    top = r * rng.uniform(0.06, 0.12)
    ant_h = r * rng.uniform(0.05, 0.09)
    head_w, head_h = r * rng.uniform(0.1, 0.15), r * rng.uniform(0.14, 0.2)  # half width, full height
    h0 = top + ant_h
    torso_w, torso_h = r * rng.uniform(0.14, 0.2), r * rng.uniform(0.24, 0.3)
    t0 = h0 + head_h + max(1.0, u)
    t1 = t0 + torso_h
    foot_h = max(1.0, r * 0.05)
    ground = r * rng.uniform(0.88, 0.94)
    limb = max(1.0, r * rng.uniform(0.05, 0.07))
    gap = max(1.0, torso_w * rng.uniform(0.25, 0.45))
    ax = np.abs(xx - cx)
    head = (yy >= h0) & (yy < h0 + head_h) & (ax < head_w)
    neck = (yy >= h0 + head_h) & (yy < t0) & (ax < max(1.0, head_w * 0.4))
    torso = (yy >= t0) & (yy < t1) & (ax < torso_w)
    arms = (yy >= t0 + u) & (yy < t1 + r * 0.05) & (ax >= torso_w) & (ax < torso_w + limb)
    legs = (yy >= t1) & (yy < ground - foot_h) & (ax >= gap) & (ax < gap + limb)
    feet = (yy >= ground - foot_h) & (yy < ground) & (ax >= gap - u * 0.5) & (ax < gap + limb + u)
    antenna = (yy >= top + u) & (yy < h0) & (ax < max(0.6, u * 0.6))
    tip = (yy >= top) & (yy < top + max(1.0, 1.5 * u)) & (ax < max(1.0, u))
    eye_y = h0 + head_h * rng.uniform(0.3, 0.45)
    eyes = (np.abs(yy - eye_y) < max(0.6, u * 0.9)) & (np.abs(ax - head_w * 0.45) < max(0.6, u * 0.9))
    lamp = (np.abs(yy - (t0 + torso_h * 0.35)) < max(0.6, u)) & (ax < max(0.6, u))
    lab[arms | legs | antenna] = JOINT
    lab[head | neck | torso | feet] = METAL
    lab[(eyes & head) | tip | (lamp & torso)] = LIGHT
    return lab

  def render(self, labels: np.ndarray, height: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Layout first: the RGB of a part-label map (e.g. a model's), coloured and shaded by this world's renderer
    (``eval.py --render=world``)."""
    r = labels.shape[0]
    rng = np.random.default_rng([_WORLD_ID, int(seed), int(r), 0x5E4D])
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float32)
    return self._render(rng, r, labels.astype(np.uint8), yy, xx, (r - 1) / 2.0)

  def _render(self, rng, r, lab, yy, xx, cx):
    bg = np.array([228, 232, 238], np.float32) * rng.uniform(0.85, 1.05)
    quadruped = self.kind_of(lab) == QUADRUPED  # fur for quadrupeds, feathers for birds (unused by the others)
    fur = _FURS[rng.integers(len(_FURS))] if quadruped else _FEATHERS[rng.integers(len(_FEATHERS))]
    metal = _METALS[rng.integers(len(_METALS))]
    colours = np.stack(
      [
        bg,
        _SKINS[rng.integers(len(_SKINS))],
        _HAIRS[rng.integers(len(_HAIRS))],
        _CLOTH[rng.integers(len(_CLOTH))],
        _CLOTH[rng.integers(len(_CLOTH))],
        np.array([50, 40, 30], np.float32) * rng.uniform(0.6, 1.6),
        _CLOTH[rng.integers(len(_CLOTH))] * 0.8,
        fur,
        fur * rng.uniform(0.55, 0.8) if quadruped else np.float32([230, 150, 40]),  # legs: darker fur; birds' orange
        _FEATHERS[rng.integers(len(_FEATHERS))] * rng.uniform(0.6, 0.9),
        np.array([245, 160, 30], np.float32) * rng.uniform(0.85, 1.05),
        metal,
        metal * rng.uniform(0.45, 0.65),
        _LIGHTS[rng.integers(len(_LIGHTS))],
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

  @staticmethod
  def kind_of(labels: np.ndarray) -> int:
    """The figure's kind (``PERSON``, ``QUADRUPED``, ``BIRD``, ``ROBOT``): the one whose parts cover most pixels
    (a bird is an animal whose wing and beak are at least 5% of it)."""
    counts = np.bincount(labels.ravel(), minlength=len(CharactersWorld.class_names))
    person = counts[[SKIN, HAIR, SHIRT, PANTS, SHOES, ACCESSORY]].sum()
    animal = counts[[FUR, LIMBS, WING, BEAK]].sum()
    robot = counts[[METAL, JOINT, LIGHT]].sum()
    best = int(np.argmax([person, animal, robot]))
    if best == 0:
      return PERSON
    if best == 2:
      return ROBOT
    # A bird's wing and beak are a fifth of it or more; a speck of them on a quadruped does not make it a bird.
    return BIRD if counts[WING] + counts[BEAK] >= 0.05 * animal else QUADRUPED

  def validity(self, labels, height=None) -> dict[str, bool]:
    tol = TOLERANCE
    r = labels.shape[0]
    fig = labels != BACKGROUND
    kind = self.kind_of(labels)
    out = {}
    if fig.any():
      lab, n = ndimage.label(fig, _EIGHT)
      largest = ndimage.sum_labels(fig, lab, np.arange(1, n + 1)).max()
      out["one_figure"] = bool(largest >= (1 - tol) * fig.sum())
    else:
      out["one_figure"] = False
    foreign = fig & ~np.isin(labels, KIND_PARTS[kind])
    out["one_kind"] = bool(fig.any() and foreign.sum() <= tol * fig.sum())
    rows = np.arange(r)[:, None] * np.ones((1, r))
    med = {c: float(np.median(rows[labels == c])) for c in range(1, len(self.class_names)) if (labels == c).any()}
    if kind == PERSON:
      order = [c for c in (SHIRT, PANTS, SHOES) if c in med]
      ok = all(med[a] < med[b] for a, b in zip(order, order[1:]))
      if HAIR in med and SHIRT in med:
        ok = ok and med[HAIR] < med[SHIRT]
    elif kind in (QUADRUPED, BIRD):
      ok = FUR in med and LIMBS in med and med[FUR] < med[LIMBS]
      if kind == BIRD and BEAK in med and LIMBS in med:
        ok = ok and med[BEAK] < med[LIMBS]
    else:
      ok = LIGHT in med and JOINT in med and med[LIGHT] < med[JOINT]
      metal_rows = np.nonzero((labels == METAL).any(1))[0]
      joint_rows = np.nonzero((labels == JOINT).any(1))[0]
      ok = ok and len(metal_rows) > 0 and len(joint_rows) > 0 and metal_rows[-1] >= joint_rows[-1]  # feet last
    out["parts_in_order"] = bool(ok)
    if kind in (PERSON, ROBOT):
      body = np.isin(labels, (SKIN, SHIRT, PANTS, SHOES) if kind == PERSON else (METAL, JOINT, LIGHT))
      inter = (body & body[:, ::-1]).sum()
      union = (body | body[:, ::-1]).sum()
      out["symmetric_body"] = bool(union > 0 and inter >= (1 - 4 * tol) * union)
    else:
      out["symmetric_body"] = True  # side views
    need = {PERSON: (SKIN, SHIRT, PANTS), QUADRUPED: (FUR, LIMBS), BIRD: (FUR, WING, BEAK, LIMBS)}.get(
      kind, (METAL, JOINT, LIGHT)
    )
    out["has_parts"] = bool(all((labels == c).mean() >= (0.005 if c != BEAK else 0.002) for c in need))
    cols = np.nonzero(fig.any(0))[0]
    out["centred"] = bool(len(cols) and abs((cols[0] + cols[-1]) / 2 - (r - 1) / 2) <= 0.15 * r)
    return out

  def statistics(self, labels, height=None) -> np.ndarray:
    r = labels.shape[0]
    k = len(self.class_names)
    fr = np.bincount(labels.ravel(), minlength=k)[1:k] / labels.size
    fig = labels != BACKGROUND
    rws, cls = np.nonzero(fig.any(1))[0], np.nonzero(fig.any(0))[0]
    fh = (rws[-1] - rws[0] + 1) / r if len(rws) else 0.0
    fw = (cls[-1] - cls[0] + 1) / r if len(cls) else 0.0
    head = np.nonzero((labels == SKIN).any(1))[0]
    hh = (head[0] - rws[0]) / max(fh * r, 1) if len(head) and len(rws) else 0.0
    return np.array([*fr, fh, fw, hh], np.float32)
