"""A signed field whose zero set runs along a label map's thin water: rivers a flow can keep whole.

A coarse map holds a 1-px river as a one-block share (1/8 of an 8x8 block),
which a flow must land on exactly along the whole river; drawn by windows,
such lines come out as fragments (``docs/large-scenes.md``). A continuous
field has no loose ends: its zero set is closed curves or curves that leave
the map, whatever the field's errors. ``signed_field`` builds one from labels
alone, so it needs nothing a user's label maps lack:

* water, with the road pixels that bridge it (``metrics.multiscale.bridged_water``);
* lakes: the water an opening by a ``wide x wide`` square keeps; rivers: the rest;
* the land between is cut into 4-connected pieces; two pieces within ``reach``
  px of the same river pixel (one at least ``reach + 1`` px from a lake) are
  on its two banks, and the pieces are 2-coloured over that graph (largest
  piece first, its sign drawn from ``seed``), so crossing a river flips the
  sign; an odd cycle (a bridge that joins two banks) leaves one bank pair
  unflipped and is counted;
* the field: the sign times the distance to water, saturating at ``cap`` px,
  in [-1, 1]; water takes its nearest land pixel's sign (near 0), so a river's
  two banks meet in its middle.

Its block mean at a coarse factor is a smooth map the coarse level can draw
beside the shares; where it changes sign between neighbouring blocks
(``crossings``) a river runs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from genenv_jax.data import coarse
from genenv_jax.metrics import multiscale

_FOUR = ndimage.generate_binary_structure(2, 1)
PRUNE_SHARE = 0.1  # a block is part of a coarse water piece when its share of the class is at least this


def signed_field(
  labels, class_names, water: str = "water", wide: int = 7, reach: int = 3, cap: float = 24.0, seed: int = 0
):
  """[H, W] labels -> (field [H, W] float32 in [-1, 1], odd cycles met). See the module doc; ``seed`` draws
  the sign of each group of pieces that no river links (the largest piece's sign, were it always +1, would
  make every map mostly positive, a bias a model trained on small maps carries into large ones)."""
  names = list(class_names)
  if water not in names:
    raise ValueError(f"river field of class {water!r}: not one of the world's classes {names}")
  if not (isinstance(wide, int) and wide >= 1 and isinstance(reach, int) and reach >= 1 and cap > 0):
    raise ValueError(f"river field: wide={wide!r}, reach={reach!r} (positive integers), cap={cap!r} (positive)")
  labels = np.asarray(labels)
  if labels.ndim != 2:
    raise ValueError(f"river field: labels of shape {labels.shape}: must be [H, W]")
  road = labels == names.index("road") if "road" in names else None
  wet = multiscale.bridged_water(labels == names.index(water), road)
  if not wet.any():  # dry: one sign, saturated
    return np.full(labels.shape, np.random.default_rng(seed).choice((-1.0, 1.0)), np.float32), 0
  lakes = ndimage.binary_opening(wet, np.ones((wide, wide), bool))
  near_lake = ndimage.binary_dilation(lakes, np.ones((2 * reach + 3, 2 * reach + 3), bool))
  thin = wet & ~near_lake  # rivers away from lakes: a lake's narrow neck or corner joins no banks
  ids, n = ndimage.label(~wet, _FOUR)
  if n == 0:  # all water: no banks
    return np.zeros(labels.shape, np.float32), 0
  none = n + 1
  lo = ndimage.minimum_filter(np.where(ids > 0, ids, none), size=2 * reach + 1)
  hi = ndimage.maximum_filter(ids, size=2 * reach + 1)
  banks = thin & (lo < none) & (lo != hi)
  pairs = np.unique(np.stack([lo[banks], hi[banks]], 1), axis=0) if banks.any() else np.zeros((0, 2), int)
  adj = [[] for _ in range(n + 1)]
  for a, b in pairs:
    adj[a].append(b)
    adj[b].append(a)
  colour = np.zeros(n + 1, np.int8)
  sizes = np.bincount(ids.ravel(), minlength=n + 1)
  odd, rng = 0, np.random.default_rng(seed)
  for root in np.argsort(-sizes[1:], kind="stable") + 1:  # largest piece first: deterministic
    if colour[root]:
      continue
    colour[root] = rng.choice((-1, 1))
    stack = [root]
    while stack:
      u = stack.pop()
      for v in adj[u]:
        if colour[v] == 0:
          colour[v] = -colour[u]
          stack.append(v)
        elif colour[v] == colour[u]:
          odd += 1
  _, (iy, ix) = ndimage.distance_transform_edt(wet, return_indices=True)  # water: its nearest land pixel
  sign = colour[ids][iy, ix].astype(np.float32)
  d_land = ndimage.distance_transform_edt(~wet)
  field = sign * np.maximum(np.minimum(d_land, cap) / cap, 1e-3)
  return field.astype(np.float32), odd // 2


def crossings(field):
  """[..., h, w] -> [..., h, w] bool: pixels whose sign differs from the next pixel's down or right (a river
  between them, marked on the first of the two). numpy or JAX arrays (inside a jitted finalize)."""
  xp = coarse._xp(field)
  pos = xp.asarray(field) > 0
  lead = [(0, 0)] * (pos.ndim - 2)
  down = xp.pad(pos[..., :-1, :] != pos[..., 1:, :], lead + [(0, 1), (0, 0)])
  right = xp.pad(pos[..., :, :-1] != pos[..., :, 1:], lead + [(0, 0), (0, 1)])
  return down | right


def smooth(field):
  """[..., h, w] -> the 3x3 mean of each pixel's neighbourhood (edges repeated): a drawn field's grain (small
  sign flips a pixel wide) averaged away before ``crossings`` reads it (``docs/large-scenes.md``)."""
  xp = coarse._xp(field)
  h, w = field.shape[-2:]
  p = xp.pad(field, [(0, 0)] * (field.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
  return sum(p[..., i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def check_share(share, name: str = "hier.river_share") -> float:
  """A crossing block's share of the class (``carve``'s ``share``): a number in (0, 1], or a ValueError."""
  from genenv_jax import config_utils

  meaning = (
    "the share of the class a block where the river field changes sign is given; 0.5 at factor 8 is a 4-px river "
    "across the block"
  )
  return config_utils.in_unit_interval(name, share, meaning)


def carve(x, field, one_hot, k: int, share: float, power: float = 1.0):
  """A coarse map [..., h, w, C] (label shares in [-1, 1], raised to ``power``: ``data.coarse.emphasize``) and its
  river field [..., h, w] -> the map with a river where the smoothed field changes sign (``smooth``,
  ``crossings``): there class ``k``'s share is raised to at least ``share`` (``hier.river_share``) and the other
  classes' shares scaled down to leave it room (their sum kept). Colours and heights are unchanged; elsewhere the map
  is ``x`` itself. What a coarse level that draws the field (``hier.coarse_field``) hands the level under it."""
  xp = coarse._xp(x)
  a, b = one_hot
  plain = coarse.repower(x, one_hot, power, 1.0)
  shares = xp.clip((plain[..., a:b] + 1.0) * 0.5, 0.0, 1.0)
  own = shares[..., k : k + 1]
  cross = crossings(smooth(field))[..., None]
  want = xp.where(cross, xp.maximum(own, share), own)
  total = shares.sum(-1, keepdims=True)
  rest = total - own
  scale = xp.where(rest > 1e-6, xp.clip(total - want, 0.0, None) / xp.maximum(rest, 1e-6), 0.0)
  others = shares * scale
  new = xp.concatenate([others[..., :k], want, others[..., k + 1 :]], -1)
  new = xp.where(cross, new, shares)
  out = xp.concatenate([plain[..., :a], (2.0 * new - 1.0).astype(x.dtype), plain[..., b:]], -1)
  return coarse.repower(out, one_hot, 1.0, power)


def component_sizes(mask, weights=None):
  """[..., h, w] bool -> [..., h, w] int: the size (pixels) of each pixel's 4-connected component of ``mask``
  (0 off it), or the sum of ``weights`` ([..., h, w] int) over it. numpy (``scipy.ndimage.label``) or JAX
  (minimum-label propagation to a fixed point, jittable); the two agree exactly."""
  xp = coarse._xp(mask)
  h, w = mask.shape[-2:]
  if xp is np:
    mask = np.asarray(mask, bool)
    flat = mask.reshape(-1, h, w)
    wts = np.ones(flat.shape, np.int64) if weights is None else np.broadcast_to(weights, mask.shape).reshape(flat.shape)
    out = np.zeros(flat.shape, np.int32)
    for i, m in enumerate(flat):
      comp, k = ndimage.label(m, _FOUR)
      if k:
        out[i] = np.where(m, np.bincount(comp.ravel(), wts[i].ravel())[comp], 0)
    return out.reshape(mask.shape)
  import jax
  import jax.numpy as jnp

  big = h * w
  lead = [(0, 0)] * (mask.ndim - 2)
  ids0 = jnp.where(mask, jnp.arange(big, dtype=jnp.int32).reshape(h, w), big)

  def spread(ids):
    p = jnp.pad(ids, lead + [(1, 1), (1, 1)], constant_values=big)
    nb = jnp.minimum(jnp.minimum(p[..., :-2, 1:-1], p[..., 2:, 1:-1]), jnp.minimum(p[..., 1:-1, :-2], p[..., 1:-1, 2:]))
    return jnp.where(mask, jnp.minimum(ids, nb), big)

  def go(state):
    ids, _ = state
    new = spread(ids)
    return new, jnp.any(new != ids)

  ids, _ = jax.lax.while_loop(lambda s: s[1], go, (ids0, jnp.bool_(True)))
  flat = ids.reshape(-1, big)
  wts = jnp.ones_like(flat) if weights is None else jnp.broadcast_to(jnp.asarray(weights, jnp.int32), ids.shape)
  wts = wts.reshape(-1, big)
  counts = jax.vmap(lambda r, v: jnp.zeros(big + 1, jnp.int32).at[r].add(v))(flat, wts)
  sizes = jnp.take_along_axis(counts, flat, -1)
  return jnp.where(mask, sizes.reshape(ids.shape), 0)


def check_min_blocks(n, name: str = "hier.min_water_blocks") -> int:
  """``prune``'s ``min_blocks``: an int >= 0 (0: nothing pruned), or a ValueError naming it."""
  if isinstance(n, bool) or not isinstance(n, int) or n < 0:
    raise ValueError(
      f"{name}={n!r}: must be an int >= 0 (coarse water pieces of fewer blocks, each holding at least "
      f"{PRUNE_SHARE:g} of the class, are given to the other classes before the fine level draws; 0 prunes nothing)"
    )
  return n


def check_prune_class(class_names, has_labels: bool = True) -> int:
  """The ``water`` class's index, which ``hier.min_water_blocks`` prunes, or a ValueError."""
  if "water" not in list(class_names):
    raise ValueError(
      f"hier.min_water_blocks: prunes the 'water' class, which this world's classes {list(class_names)} lack; "
      "set it to 0"
    )
  if not has_labels:
    raise ValueError("hier.min_water_blocks: needs the 'labels' channels in data.channels (the water share)")
  return list(class_names).index("water")


def prune(x, one_hot, k: int, min_blocks: int, power: float = 1.0, protect=None):
  """A coarse map [..., h, w, C] -> the map with class ``k`` taken out of its small pieces: blocks holding at
  least ``PRUNE_SHARE`` of it, 4-connected, form pieces, and in a piece of fewer than ``min_blocks`` blocks the
  class's share is set to 0 and the other classes' scaled up to keep the block's sum (a block of the class alone
  is left as it is). ``hier.min_water_blocks``: the fine level draws a pond wherever its map has a water block,
  and a drawn coarse map has many more one- and two-block pieces than real maps (``docs/large-scenes.md``).
  ``min_blocks`` 0 or 1 returns ``x`` itself. ``protect`` ([..., h, w] bool): a piece holding such a block (what
  a sketch paints) is kept whatever its size. numpy or JAX."""
  if min_blocks <= 1:
    return x
  xp = coarse._xp(x)
  a, b = one_hot
  plain = coarse.repower(x, one_hot, power, 1.0)
  shares = xp.clip((plain[..., a:b] + 1.0) * 0.5, 0.0, 1.0)
  own = shares[..., k]
  weights = None if protect is None else 1 + min_blocks * xp.asarray(protect).astype(xp.int32)
  size = component_sizes(own >= PRUNE_SHARE, weights)
  total = shares.sum(-1)
  rest = total - own
  small = (size > 0) & (size < min_blocks) & (rest > 1e-6)
  scale = xp.where(small, total / xp.maximum(rest, 1e-6), 1.0)[..., None]
  new = shares * scale
  new = xp.concatenate([new[..., :k], xp.where(small, 0.0, own)[..., None], new[..., k + 1 :]], -1)
  out = xp.concatenate([plain[..., :a], (2.0 * new - 1.0).astype(x.dtype), plain[..., b:]], -1)
  return coarse.repower(out, one_hot, 1.0, power)
