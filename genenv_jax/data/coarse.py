"""The data of a two-level (coarse-to-fine) model: coarse maps of large regions beside fine windows.

A hierarchical model (``genenv_jax.families.flow_matching_hier``) learns two
things from a built-in world:

* the **coarse** level: regions of ``factor x S`` pixels, averaged down by
  ``factor`` to ``S x S`` (block means of the model tensor: colours and
  heights are means, one-hot label channels become each class's share of the
  block, mapped to [-1, 1]); these are drawn here, once, and kept as a
  float16 ``.npy`` file beside the TFDS data (seeds away from every other
  set: ``COARSE_SEED`` for train, plus ``TEST_SEED_OFFSET`` for test);
* the **fine** level: the world's ordinary ``S x S`` windows (the same TFDS
  data the single-level models read); the coarse map under a window is the
  window's own block mean, computed on the device inside the train step, so
  it is exactly what the coarse level hands the fine level when sampling.

``HierSource`` pairs them: row i is fine window i and coarse map
``i mod len(coarse)`` (the loader puts the latter in ``batch['x_coarse']``);
a three-level model's top maps (``hier.top_factor``: regions averaged down
by it, drawn the same way) go in ``batch['x_top']``, row i holding top map
``i mod len(top)``.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os

import numpy as np

from genenv_jax.data import world_builder
from genenv_jax.scenes import get_world

COARSE_SEED = 3 * 10**6  # coarse regions' seeds: away from large_eval's 0, 10**6 and 2*10**6


def downsample(x, factor: int):
  """[..., H, W, C] -> [..., H/f, W/f, C] block means (numpy or jax arrays)."""
  *lead, h, w, c = x.shape
  if h % factor or w % factor:
    raise ValueError(f"{h}x{w}: must be a multiple of the coarse factor {factor}")
  return x.reshape(*lead, h // factor, factor, w // factor, factor, c).mean(axis=(-4, -2))


def _xp(x):
  """jax.numpy for JAX arrays and tracers (inside a train step), numpy otherwise (the drawing workers import no JAX)."""
  if type(x).__module__.startswith("jax"):
    import jax.numpy as jnp

    return jnp
  return np


def check_share_power(power) -> float:
  """``hier.share_power``: a number in (0, 1] (1: label shares as plain block means)."""
  from genenv_jax import config_utils

  meaning = (
    "1: label shares as block means; 0.5: their square roots, so a 1-px river's 1/8 share of an 8x8 block reads "
    "0.35, not 0.125"
  )
  return config_utils.in_unit_interval("hier.share_power", power, meaning)


def emphasize(x, one_hot, power: float):
  """Block means -> a coarse map whose label channels hold each class's share raised to ``power`` (in [-1, 1]).

  ``power`` 1 returns ``x`` itself. Below 1 a thin feature's small share stands out (``hier.share_power``):
  rivers 1-3 px wide fill 5-40% of the 8x8 blocks they cross, next to nothing in plain means. Pure blocks
  (shares 0 or 1: a sketch's painted classes) are unchanged, and the order of the classes in a block too
  (the argmax of the label channels is the block's majority class either way).
  """
  return repower(x, one_hot, 1.0, power)


def repower(x, one_hot, power: float, to: float):
  """A map whose label channels hold shares raised to ``power`` -> the same map with them raised to ``to``
  (``to`` 1: plain block means). Colours and heights are unchanged; ``power == to`` returns ``x`` itself."""
  a, b = one_hot
  if power == to or a == b:
    return x
  xp = _xp(x)
  share = xp.clip((x[..., a:b] + 1.0) * 0.5, 0.0, 1.0) ** (to / power)
  return xp.concatenate([x[..., :a], (2.0 * share - 1.0).astype(x.dtype), x[..., b:]], -1)


def pool(x, factor: int, one_hot, power: float):
  """``downsample`` of a map in ``emphasize``'s space (a one-hot fine window, or a coarse map) to one in the same
  space ``factor`` times coarser: label shares are taken back to plain shares, averaged, and emphasized again, so
  pooling twice by 2 is pooling once by 4 and a fine window's pool is the emphasized block mean."""
  if power == 1.0:
    return downsample(x, factor)
  return emphasize(downsample(repower(x, one_hot, power, 1.0), factor), one_hot, power)


def trace(x, one_hot, k: int, factor: int, ratio: int, power: float = 1.0):
  """A coarse map [..., h, w, C] (``emphasize``'s space, at ``factor``) -> [..., h/ratio, w/ratio, 1] in [-1, 1]:
  the share of each ``ratio x ratio`` block's coarse pixels where class ``k``'s share is at least ``1/factor``
  (a 1-px line across the pixel's ``factor x factor`` block: a river). ``hier.top_trace``: a top map's extra
  channel, so a river (1/32 of a 32-px top block, next to nothing in its mean) marks the top map where it runs."""
  a, _ = one_hot
  xp = _xp(x)
  share = xp.clip((x[..., a + k : a + k + 1] + 1.0) * 0.5, 0.0, 1.0)
  if power != 1.0:
    share = share ** (1.0 / power)
  hit = (share >= 1.0 / factor - 0.5 / factor**2).astype(x.dtype)  # shares are multiples of 1/factor**2
  return 2.0 * downsample(hit, ratio) - 1.0


def top_map(x, ratio: int, one_hot, power: float, traced):
  """A coarse map (at ``factor``, ``emphasize``'s space) -> the top map over it (``pool`` by ``ratio``), with
  ``trace``'s channel after the C model channels where ``traced`` is ``(k, factor)`` (``hier.top_trace``'s class
  index and the coarse factor; None: no trace channel)."""
  t = pool(x, ratio, one_hot, power)
  if traced is None:
    return t
  xp = _xp(x)
  return xp.concatenate([t, trace(x, one_hot, traced[0], traced[1], ratio, power).astype(t.dtype)], -1)


def upsample(x, factor: int):
  """[..., h, w, C] -> [..., h*f, w*f, C] by repeating each coarse pixel (numpy or jax arrays)."""
  x = x.repeat(factor, axis=-3)
  return x.repeat(factor, axis=-2)


def _record(sc) -> dict[str, np.ndarray]:
  return {
    "image": sc.rgb[None],
    "labels": sc.labels[None],
    "height": world_builder.height_record(sc.height)[None],
    "label": np.array([sc.scene_class], np.int32),
  }


def _draw(args):
  world_name, seeds, big, factor, channels, traced, field = args
  from genenv_jax import layout as layout_lib
  from genenv_jax.data import river_field

  world = get_world(world_name)
  lay = layout_lib.Layout.for_data(channels, world)
  xs, labels = [], []
  for s in seeds:
    sc = world.region(s, 0, 0, big, big) if hasattr(world, "region") else world.generate(s, big)
    x = lay.encode(_record(sc))[0].astype(np.float32)
    if field is not None:  # hier.coarse_field: the river field's block mean after the C channels
      fld = river_field.signed_field(sc.labels, world.class_names, water=field, seed=s)[0]
      x = np.concatenate([x, fld[..., None]], -1)
    if traced is None:
      x = downsample(x, factor)
    else:  # the trace is read at the coarse factor under the top map (plain block means: emphasized as read)
      x = top_map(downsample(x, traced[1]), factor // traced[1], lay.one_hot, 1.0, traced)
    xs.append(x.astype(np.float16))
    labels.append(sc.scene_class)
  return np.stack(xs), np.array(labels, np.int32)


def coarse_path(
  data_dir: str, world: str, factor: int, size: int, n: int, split: str, channels, traced=None, field=None
) -> str:
  w = get_world(world)
  tag = "-".join(channels) + ("" if traced is None else f"_trace{traced[0]}f{traced[1]}")
  tag += "" if field is None else f"_field-{field}"
  return os.path.join(
    os.path.expanduser(data_dir),
    "genenv_coarse",
    f"{world}_v{w.version}_h16_f{factor}_{size}px_{n}_{split}_{tag}.npz",  # h16: from 16-bit height records
  )


def prepare(
  world: str, factor: int, size: int, n: int, split: str, data_dir: str, channels, workers=0, traced=None, field=None
):
  """(x [n, size, size, C] float16, label [n]): the coarse maps, drawn on first use (then read from disk).
  ``traced`` (``(k, coarse factor)``, top maps of ``hier.top_trace``): a (C+1)th channel, ``trace``'s.
  ``field`` (a class name, ``hier.coarse_field``): a (C+1)th channel, the block mean of
  ``river_field.signed_field`` of the region's labels (its seed the region's)."""
  if traced is not None and field is not None:
    raise ValueError("coarse maps with a trace and a river field: the trace is the top maps', the field the coarse")
  path = coarse_path(data_dir, world, factor, size, n, split, channels, traced, field)
  if os.path.exists(path):
    with np.load(path) as z:
      return z["x"], z["label"]
  first = COARSE_SEED + (world_builder.TEST_SEED_OFFSET if split == "test" else 0)
  seeds = list(range(first, first + n))
  workers = workers or max(1, min(os.cpu_count() or 1, 8))
  parts = [seeds[i : i + 64] for i in range(0, n, 64)]
  jobs = [(world, p, factor * size, factor, tuple(channels), traced, field) for p in parts]
  from genenv_jax import logs

  logs.phase(f"drawing {n} coarse maps of {world} ({factor * size}-px regions averaged down to {size} px), once")
  if workers == 1 or len(parts) == 1:
    out = [_draw(j) for j in jobs]
  else:
    ctx = multiprocessing.get_context("spawn")  # numpy only in the workers; never fork a process holding JAX
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
      out = list(ex.map(_draw, jobs))
  x = np.concatenate([o[0] for o in out])
  label = np.concatenate([o[1] for o in out])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}.npz"
  np.savez(tmp, x=x, label=label)
  os.replace(tmp, path)
  return x, label


class HierSource:
  """A world's fine windows (``fine``, a ``WorldSource``) with coarse maps of its large regions.

  ``get`` returns the fine rows and ``coarse``: [n, S', S', C] float32 model
  tensors (already encoded: the loader passes them through as ``x_coarse``;
  S' is ``coarse_size``, ``hier.coarse_window``'s, else the training size S).
  ``traced`` (``hier.top_trace``: the class index and the coarse factor): the
  top maps carry ``trace``'s channel after the C model channels. ``field`` (``hier.coarse_field``'s class):
  the coarse maps carry the river field's channel after the C model channels (``prepare``).
  """

  has_structure = True

  def __init__(
    self,
    fine,
    world: str,
    factor: int,
    size: int,
    n: int,
    split: str,
    data_dir: str,
    channels,
    top=None,
    shares=None,
    traced=None,
    coarse_size=None,
    field=None,
  ):
    self.fine = fine
    cs = coarse_size or size  # hier.coarse_window: the coarse maps' size (the top maps' is the training size)
    self._shares = shares  # (one_hot, power): ``emphasize``'s, applied as maps are read (the files hold block means)
    self._args = (world, factor, cs, n, split, data_dir, tuple(channels), 0, None, field)
    self._top_args = None if top is None else (world, top[0], size, top[1], split, data_dir, tuple(channels), 0, traced)
    self._coarse = self._top = None
    self.class_names, self.num_classes = fine.class_names, fine.num_classes
    self.description = f"{fine.description}, with {n} coarse maps of {factor * cs}-px regions"
    if top is not None:
      self.description += f" and {top[1]} top maps of {top[0] * size}-px regions"

  @property
  def coarse(self) -> np.ndarray:
    if self._coarse is None:
      self._coarse = self._emphasized(prepare(*self._args)[0])
    return self._coarse

  def _emphasized(self, x):
    if self._shares is None or self._shares[1] == 1.0:
      return x
    return emphasize(x.astype(np.float32), *self._shares).astype(np.float16)

  @property
  def top(self) -> np.ndarray | None:
    """A three-level model's top maps (``hier.top_factor``), else None."""
    if self._top is None and self._top_args is not None:
      self._top = self._emphasized(prepare(*self._top_args)[0])
    return self._top

  def __len__(self):
    return len(self.fine)

  def get(self, indices):
    out = self.fine.get(indices)
    c = self.coarse
    idx = np.asarray(indices, np.int64)
    out["coarse"] = c[idx % len(c)].astype(np.float32)
    if self.top is not None:
      out["top"] = self.top[idx % len(self.top)].astype(np.float32)
    return out


def check_factor(factor, image_size: int) -> None:
  """``hier.factor``: a power of two >= 2 that divides the training size (the family and the data both ask)."""
  f = factor
  if not isinstance(f, int) or isinstance(f, bool) or f < 2 or f & (f - 1):
    raise ValueError(f"hier.factor={f!r}: must be a power of two >= 2 (pixels per coarse pixel, each way)")
  if image_size % f:
    raise ValueError(f"hier.factor={f} with data.image_size={image_size}: the size must be a multiple")


def check_top_factor(top, factor: int, image_size: int) -> None:
  """``hier.top_factor``: 0 (two levels), or a power of two above ``hier.factor`` whose ratio to it divides the
  training size (the coarse level sees the top map under its window in blocks of that ratio)."""
  t = top
  if t == 0:
    return
  if not isinstance(t, int) or isinstance(t, bool) or t <= factor or t & (t - 1) or image_size % (t // factor):
    raise ValueError(
      f"hier.top_factor={t!r}: must be 0 (two levels) or a power of two above hier.factor={factor} with "
      f"top_factor/factor dividing data.image_size={image_size} (e.g. {4 * factor})"
    )


def coarse_window(hier, image_size: int) -> int:
  """``hier.coarse_window``'s size in coarse pixels: the coarse level's training maps and sampling windows
  (0, the default: ``data.image_size``; older configs have none)."""
  w = hier.get("coarse_window", 0)
  return w or image_size


def check_coarse_window(w, image_size: int, top: int, factor: int, levels: int) -> int:
  """``hier.coarse_window``: 0 (the training size) or a multiple of 8 at least the training size (a canvas
  window), halved ``levels - 1`` times by the coarse U-Net; with a top level, its blocks of
  ``top_factor / factor`` whole and at most a top window (``image_size`` top pixels) under it. Returns the size."""
  if w == 0:
    return image_size
  r = top // factor if top else 1
  ok = isinstance(w, int) and not isinstance(w, bool) and w >= image_size and w % 8 == 0
  ok = ok and w % 2 ** (levels - 1) == 0 and w % r == 0 and (not top or w // r <= image_size)
  if not ok:
    most = f" and at most {image_size * r} (a top window under it)" if top else ""
    raise ValueError(
      f"hier.coarse_window={w!r}: must be 0 (data.image_size={image_size}) or a multiple of "
      f"{math.lcm(8, 2 ** (levels - 1), r)} from {image_size}{most} (the coarse level's maps and windows, in "
      "coarse pixels)"
    )
  return w


def check_top_trace(name, top_factor: int, class_names, has_labels: bool = True) -> int | None:
  """``hier.top_trace``: '' (none) or a label class of the world, for three-level models with label channels;
  its index among the classes (None for '')."""
  if name == "":
    return None
  if not isinstance(name, str) or name not in class_names:
    raise ValueError(f"hier.top_trace={name!r}: must be '' (none) or one of the world's classes {list(class_names)}")
  if not top_factor:
    raise ValueError(f"hier.top_trace={name!r}: for three-level models only (hier.top_factor > 0)")
  if not has_labels:
    raise ValueError(f"hier.top_trace={name!r}: needs the 'labels' channels in data.channels (a class's shares)")
  return list(class_names).index(name)


def check_coarse_field(name, class_names, has_labels: bool = True) -> int | None:
  """``hier.coarse_field``: '' (none) or a label class of the world whose thin parts (rivers) the coarse level
  draws as a signed field (``data.river_field``); its index among the classes (None for '')."""
  if name == "":
    return None
  if not isinstance(name, str) or name not in class_names:
    raise ValueError(
      f"hier.coarse_field={name!r}: must be '' (none) or one of the world's classes {list(class_names)} (its "
      "rivers drawn as a signed field)"
    )
  if not has_labels:
    raise ValueError(f"hier.coarse_field={name!r}: needs the 'labels' channels in data.channels (a class's shares)")
  return list(class_names).index(name)


def check(hier, data_cfg) -> None:
  """The ``hier`` section against the data, before anything is drawn."""
  check_factor(hier.factor, data_cfg.image_size)
  if data_cfg.source != "world":
    raise ValueError(
      f"family='flow_matching_hier' with data.source={data_cfg.source!r}: the coarse level is drawn from a "
      "built-in world's large regions (data.source='world')"
    )
  top = hier.get("top_factor", 0)
  check_top_factor(top, hier.factor, data_cfg.image_size)
  check_share_power(hier.get("share_power", 1.0))
  names = get_world(data_cfg.world).class_names
  check_top_trace(hier.get("top_trace", ""), top, names, "labels" in data_cfg.channels)
  check_coarse_field(hier.get("coarse_field", ""), names, "labels" in data_cfg.channels)
  levels = len(tuple(hier.get("coarse_widths", (0,))))
  check_coarse_window(hier.get("coarse_window", 0), data_cfg.image_size, top, hier.factor, levels)
  for key in ("coarse_num_train", "coarse_num_test") + (("top_num_train", "top_num_test") if top else ()):
    v = hier.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
      raise ValueError(f"hier.{key}={v!r}: must be a positive integer (coarse maps drawn)")


def make_source(fine, data_cfg, hier, split: str) -> HierSource:
  check(hier, data_cfg)
  n = hier.coarse_num_train if split == "train" else hier.coarse_num_test
  top = None
  if hier.get("top_factor", 0):
    top = (hier.top_factor, hier.top_num_train if split == "train" else hier.top_num_test)
  from genenv_jax import layout as layout_lib

  world = get_world(data_cfg.world)
  one_hot = layout_lib.Layout.for_data(data_cfg.channels, world).one_hot
  shares = (one_hot, check_share_power(hier.get("share_power", 1.0)))
  k = check_top_trace(hier.get("top_trace", ""), hier.get("top_factor", 0), world.class_names)
  traced = None if k is None else (k, hier.factor)
  return HierSource(
    fine,
    data_cfg.world,
    hier.factor,
    data_cfg.image_size,
    n,
    split,
    data_cfg.data_dir,
    data_cfg.channels,
    top,
    shares,
    traced,
    coarse_window(hier, data_cfg.image_size),
    hier.get("coarse_field", "") or None,
  )
