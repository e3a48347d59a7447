"""What the world server draws from: a built-in world (real scenes) or a trained model, as pure regions.

Every source answers ``region(seed, y0, x0, h, w)`` with the layers of that
window of its unbounded world, a pure function of (source, seed,
coordinates): two overlapping requests agree on their overlap pixel for
pixel. Edits are applied on top by ``genenv_jax.server.edits``.

- A **world** draws ``world.region`` (its regions are defined that way).
  Its edits are procedural: painted classes are set, erased pixels take the
  class and height of the nearest unedited pixel, and the world's own
  renderer redraws the colour of the edited pixels from their labels and
  heights (worlds that render from labels: city_regions, terrain_regions).
- A **GAN** renders fixed 256-px chunks of its latent-field tiling (the same
  pixels ``sample.py --scene_size`` writes at those coordinates); chunks of
  concurrent requests share one device call. It cannot inpaint (not editable).
- **Flow matching** renders fixed 256-px chunks of its canvas ODE, each drawn
  with a one-window margin from noise keyed to global coordinates, and
  cross-fades neighbouring chunks over that margin (linear weights that sum
  to 1). This keeps any region a pure function of coordinates, which one
  canvas ODE over the requested window would not be (its solution depends on
  the window's extent); the price is that the server's pixels are not those
  of ``sample.py --scene_size``'s single canvas. Edits inpaint with the
  canvas ODE (``canvas.make_inpainter``).
- **Two-level flow matching** serves coarse chunks, then fine chunks over
  the coarse map assembled under them; sketches (``sketches_of``) redraw
  the coarse chunks they touch, and edits inpaint the fine level over the
  served coarse map. Three levels add top chunks under the coarse ones
  (sketches and edits leave them as they are).
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
from scipy import ndimage

CHUNK = 256


class Layers(NamedTuple):
  """One window: rgb [h, w, 3] uint8; labels [h, w] uint8 or None; height [h, w] float32 in [0, 1] or None."""

  rgb: np.ndarray
  labels: np.ndarray | None
  height: np.ndarray | None

  def crop(self, ys: slice, xs: slice) -> Layers:
    return Layers(*(None if a is None else a[ys, xs] for a in self))


class _LRU:
  def __init__(self, size: int):
    self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

  def get(self, key):
    with self.lock:
      v = self.items.get(key)
      if v is not None:
        self.items.move_to_end(key)
      return v

  def put(self, key, value):
    with self.lock:
      self.items[key] = value
      self.items.move_to_end(key)
      while len(self.items) > self.size:
        self.items.popitem(last=False)


@dataclasses.dataclass
class Source(abc.ABC):
  """Common description; subclasses draw."""

  name: str  # what draws: 'world city_regions' or 'model W step N'
  world: str  # the world's name ('' for user data)
  family: str  # 'world', or the model's family
  class_names: tuple[str, ...]
  palette: np.ndarray
  layers: tuple[str, ...]  # of 'rgb', 'labels', 'height'
  metres_per_pixel: float
  height_range_m: float
  editable: bool
  unbounded: bool  # has regions (sprite worlds only have samples)
  max_region_pixels: int
  max_zoom: int
  scene_classes: tuple[str, ...] = ()

  def info(self) -> dict:
    return {
      "source": self.name,
      "world": self.world,
      "family": self.family,
      "layers": list(self.layers),
      "class_names": list(self.class_names),
      "palette": [[int(c) for c in p] for p in np.asarray(self.palette)[: len(self.class_names)]],
      "metres_per_pixel": self.metres_per_pixel,
      "height_range_m": self.height_range_m,
      "base_elevation_m": 0.0,
      "editable": self.editable,
      "sketch": self.sketch_info(),
      "unbounded": self.unbounded,
      "scene_classes": list(self.scene_classes),
      "limits": {
        "max_region_pixels": self.max_region_pixels,
        "max_edit_pixels": 512 * 512,
        "tile_px": 256,
        "max_zoom": self.max_zoom,
        "max_abs_coordinate": 2**30,
      },
    }

  def sketch_info(self) -> dict | None:
    """``{"factor": f}`` for a source that takes sketches (a hierarchical model's coarse map), else None.

    Three levels: the sketch is held in the coarse chunks only; the top map under them is drawn as without it
    (``sample.py --sketch`` holds a sketch's block means in the top level too). At strength 0 the coarse map is
    the sketch either way; in between, the coarse level's late redraw follows the unsketched top map.
    """
    hier = getattr(self, "hier", None)
    return {"factor": int(hier.factor)} if hier is not None and "labels" in self.layers else None

  # What a source draws: WorldSource and ModelSource each define all three.
  @abc.abstractmethod
  def region_batch(self, seed: int, windows: list[tuple[int, int, int, int]]) -> list[Layers]:
    """The layers of each (y0, x0, h, w) window of world ``seed`` (windows drawn together where they can share)."""

  @abc.abstractmethod
  def inpaint(self, seed: int, y0: int, x0: int, context: Layers, margin: int, mask, painted) -> Layers:
    """New layers for the ``mask`` pixels of the window at (y0, x0), joined to ``context`` (``margin`` px around)."""

  @abc.abstractmethod
  def sample(self, seed: int, index: int, cond: str) -> np.ndarray:
    """One sample's RGB [h, w, 3] uint8, a pure function of (seed, index, cond)."""

  def region(self, seed: int, y0: int, x0: int, h: int, w: int) -> Layers:
    return self.region_batch(seed, [(y0, x0, h, w)])[0]


# --------------------------------------------------------------------------- worlds


class WorldSource(Source):
  """Real scenes of a built-in world."""

  def __init__(self, world_name: str):
    from genenv_jax.scenes import get_world

    w = get_world(world_name)
    self.w = w
    g = getattr(w, "ground", None)
    unbounded = hasattr(w, "region") and not getattr(w, "sprites", False)
    renders = unbounded and _renders_at(w)
    super().__init__(
      name=f"world {world_name} v{w.version}",
      world=world_name,
      family="world",
      class_names=tuple(w.class_names),
      palette=np.asarray(w.palette),
      layers=("rgb", "labels", "height"),
      metres_per_pixel=g.metres_per_pixel if g else 1.0,
      height_range_m=g.height_range_m if g else 1.0,
      editable=renders,
      unbounded=unbounded,
      max_region_pixels=2048 * 2048,
      max_zoom=3,
      scene_classes=tuple(getattr(w, "scene_class_names", ())),
    )
    self._cache = _LRU(64)

  def region_batch(self, seed, windows):
    out = []
    for y0, x0, h, w in windows:
      key = (seed, y0, x0, h, w)
      got = self._cache.get(key)
      if got is None:
        got = self._draw(seed, y0, x0, h, w)
        self._cache.put(key, got)
      out.append(got)
    return out

  def _draw(self, seed, y0, x0, h, w) -> Layers:
    # Worlds want sizes >= min_size in multiples of region_multiple: draw the enclosing window and crop
    # (their regions agree on overlaps, so this is the same pixels).
    m = int(getattr(self.w, "region_multiple", 1))
    lo = int(getattr(self.w, "min_size", 16))
    hh = max(lo, -(-h // m) * m)
    ww = max(lo, -(-w // m) * m)
    sc = self.w.region(int(seed), int(y0), int(x0), hh, ww)
    return Layers(sc.rgb[:h, :w], sc.labels[:h, :w], sc.height[:h, :w].astype(np.float32))

  def inpaint(self, seed, y0, x0, context: Layers, margin: int, mask, painted) -> Layers:
    """Procedural edit of the window at (y0, x0) inside ``context`` (``margin`` px around it)."""
    m = margin
    h, w = mask.shape
    full = np.zeros(context.labels.shape, bool)
    full[m : m + h, m : m + w] = mask
    labels = context.labels.copy()
    height = context.height.copy()
    # Erased pixels: class and height of the nearest unedited pixel.
    _, (iy, ix) = ndimage.distance_transform_edt(full, return_indices=True)
    labels[full] = context.labels[iy[full], ix[full]]
    height[full] = context.height[iy[full], ix[full]]
    if painted is not None:
      pfull = np.full(full.shape, -1, np.int16)
      pfull[m : m + h, m : m + w] = np.where(mask, painted, -1)
      for c in np.unique(pfull[pfull >= 0]):
        sel = pfull == c
        labels[sel] = c
        same = (context.labels == c) & ~full
        height[sel] = float(np.median(context.height[same])) if same.any() else _class_height(self.w, int(c))
    settle = getattr(self.w, "settle_edit", None)  # the world's rules kept at the edit's edge
    if settle is not None:
      settle(labels, height, full)
    rgb = self.w.render(labels, height, int(seed), int(y0) - m, int(x0) - m)
    out = Layers(rgb, labels, height).crop(slice(m, m + h), slice(m, m + w))
    return out

  def sample(self, seed, index, cond):
    from genenv_jax.scenes import fields

    if cond not in ("", "-1"):
      raise ValueError(f"cond={cond!r}: a world's scenes are drawn by seed, not by class; leave cond out")
    s = int(fields.hash_u64(int(seed), 0x5A3, int(index)) % (2**31))
    size = max(32, -(-int(getattr(self.w, "min_size", 16)) // 16) * 16)
    return self.w.generate(s, size).rgb


def _renders_at(world) -> bool:
  """The world redraws colour from labels and heights at global coordinates (render(labels, height, seed, y0, x0))."""
  import inspect

  r = getattr(world, "render", None)
  return r is not None and "y0" in inspect.signature(r).parameters


def _class_height(world, c: int) -> float:
  name = world.class_names[c]
  return {"water": 0.0, "road": 0.02, "building": 0.4}.get(name, 0.03)


# --------------------------------------------------------------------------- models


class ModelSource(Source):
  """A trained model's unbounded world (GAN tiling or flow matching canvas) and its samples."""

  def __init__(self, trained, temperature: float | None = None, cpu_convolutions: str = "auto"):
    from genenv_jax import cpu_kernels
    from genenv_jax.synthesis import provenance

    self.t = trained
    fam = trained.family
    self.hier = (fam.extras or {}).get("hier")  # a two-level model: coarse chunks under the fine ones
    if self.hier is not None and (CHUNK % self.hier.factor or self.hier.fine.window % self.hier.factor):
      raise ValueError(
        f"hier.factor={self.hier.factor}: the server's {CHUNK}-px chunks and their {self.hier.fine.window}-px "
        "margin need a multiple of the factor"
      )
    if self.hier is not None and self.hier.top is not None:  # three levels: top chunks under the coarse ones
      r = self.hier.top_factor // self.hier.factor
      if CHUNK % r or self.hier.coarse.window % r:
        raise ValueError(
          f"hier.top_factor={self.hier.top_factor}: the server's {CHUNK}-px coarse chunks and their "
          f"{self.hier.coarse.window}-px margin need a multiple of top_factor / factor = {r}"
        )
    self.temperature = provenance.check_temperature(fam.sample_temperature if temperature is None else temperature)
    # The canvas ODEs' convolution kernels on a CPU ('auto': Eigen's, which use every core; ~1.4x faster than
    # XLA's default on 2 cores, equal up to float rounding). The GAN's tiles keep XLA's: they are the pixels
    # ``sample.py --scene_size`` writes.
    cpu_kernels.validate(cpu_convolutions, "cpu_convolutions", auto=True)
    self.kernels = cpu_kernels.resolve(cpu_convolutions)
    world = trained.world
    g = getattr(world, "ground", None) if world is not None else None
    sprites = world is not None and getattr(world, "sprites", False)
    self.kind = "tiling" if fam.tiling is not None else ("canvas" if fam.canvas is not None else "")
    super().__init__(
      name=f"model {trained.workdir} step {trained.step}",
      world=world.name if world is not None else "",
      family=trained.config.family,
      class_names=tuple(trained.layout.class_names),
      palette=np.asarray(trained.layout.palette),
      layers=tuple(c for c in ("rgb", "labels", "height") if c in trained.layout.channels),
      metres_per_pixel=g.metres_per_pixel if g else 1.0,
      height_range_m=g.height_range_m if g else 1.0,
      editable=self.kind == "canvas" and not sprites,
      unbounded=bool(self.kind) and not sprites,
      max_region_pixels=1024 * 1024,
      max_zoom=2,
      scene_classes=tuple(trained.scene_classes),
    )
    self._chunks = _LRU(64)  # float32 chunks: ~3.7 MB each with a canvas margin
    self._lock = threading.Lock()  # one device call at a time
    self._tile_fn = self._canvas_fn = self._coarse_fn = self._top_fn = self._sketch_fn = self._sample_fn = None
    # Hierarchical models: seed -> the active sketches [(id, cy0, cx0, classes [hc, wc] uint8, strength)] in log
    # order, coarse pixel coordinates (the server's edit log sets it).
    self.sketches_of = None
    self._inpaint_fns = {}

  # ---- chunks
  def _margin(self) -> int:
    return self.t.family.canvas.window if self.kind == "canvas" else 0

  def _chunk_tensors(self, seed: int, keys: list[tuple[int, int]]) -> dict:
    """Model tensors [CHUNK + 2m, CHUNK + 2m, C] (m = 0 for the GAN) of chunk (i, j), rendered where missing."""
    out, missing = {}, []
    sig = {k: self._fine_sig(seed, *k) for k in keys}  # the sketches under a chunk are part of its key
    for k in keys:
      got = self._chunks.get((seed, k, sig[k]))
      if got is None:
        missing.append(k)
      else:
        out[k] = got
    if missing:
      with self._lock:
        if self.kind == "tiling":
          rendered = self._render_tiling(seed, missing)
        else:
          rendered = self._render_canvas(seed, missing) if self.hier is None else self._render_hier(seed, missing)
      for k, v in rendered.items():
        self._chunks.put((seed, k, sig[k]), v)
        out[k] = v
    return out

  # ---- sketches (hierarchical models)
  def _sketches(self, seed: int) -> list:
    return self.sketches_of(seed) if (self.hier is not None and self.sketches_of is not None) else []

  def _coarse_span(self, i: int, j: int) -> tuple[int, int, int]:
    """Coarse chunk (i, j)'s plan: its top-left coarse pixel and side (the renderer's plan, margin included)."""
    mc = self.hier.coarse.window
    side = self._coarse_plan_side()
    return i * CHUNK - mc, j * CHUNK - mc, side

  def _coarse_plan_side(self) -> int:
    from genenv_jax import canvas

    mc = self.hier.coarse.window
    return canvas.plan(CHUNK + 2 * mc, CHUNK + 2 * mc, mc).height

  def _coarse_sig(self, seed: int, i: int, j: int, sketches=None) -> tuple:
    sketches = self._sketches(seed) if sketches is None else sketches
    if not sketches:
      return ()
    y0, x0, side = self._coarse_span(i, j)
    return tuple(
      sid for sid, cy, cx, idx, _ in sketches
      if cy < y0 + side and y0 < cy + idx.shape[0] and cx < x0 + side and x0 < cx + idx.shape[1]
    )  # fmt: skip

  def _fine_keys_coarse(self, i: int, j: int) -> tuple[int, int, list]:
    """The coarse window under fine chunk (i, j) (top-left, side) and the coarse chunks it is assembled from."""
    f, m, mc = self.hier.factor, self._margin(), self.hier.coarse.window
    side = -(-self._fine_plan_side() // f)
    cy0, cx0 = (i * CHUNK - m) // f, (j * CHUNK - m) // f
    g = self._ring()
    return cy0, cx0, self._keys(cy0 - g, cx0 - g, side + 2 * g, side + 2 * g, mc)

  def _ring(self) -> int:
    """Coarse pixels assembled around a coarse map before it is carved (``Hier.ring``: a river field's 3x3 mean
    and next pixel's sign that ``river_field.carve`` reads, and the pieces ``hier.min_water_blocks`` prunes), so
    the map is the same wherever it is asked for; 0 where the carving reads each pixel alone."""
    return self.hier.ring

  def _coarse_map(self, seed, cy0: int, cx0: int, h: int, w: int) -> np.ndarray:
    """The coarse map [h, w, C] handed to the fine level at coarse pixel (cy0, cx0) (lock held): assembled from
    the coarse chunks and, with a river field or pruning, carved and pruned over a ring of ``_ring`` pixels
    (a piece a sketch holds is kept, as ``canvas.render_hier`` keeps it), then cropped."""
    hr, g = self.hier, self._ring()
    y0, x0, hh, ww = cy0 - g, cx0 - g, h + 2 * g, w + 2 * g
    mc = hr.coarse.window
    x = self._assemble(self._coarse_chunks(seed, self._keys(y0, x0, hh, ww, mc)), y0, x0, hh, ww, mc)
    if not g:
      return x
    x = np.asarray(hr.carve(x))
    if hr.pruning:
      sketches = self._sketches(seed)
      held = None
      if sketches:  # a piece holding a block a sketch paints (strength below 1) is never pruned
        _, hold = self._sketch_maps(sketches, {s[0] for s in sketches}, y0, x0, hh, ww)
        held = hold[..., hr.one_hot[0] : hr.one_hot[1]].max(-1) > 0
      x = np.asarray(hr.prune(x, held))
    return x[g : g + h, g : g + w]

  def _coarse_canvas(self):
    """The coarse level's canvas as the chunks render it: with a river field or pruning, its finalize clips and
    keeps the field (the map is carved once the chunks are assembled, ``_coarse_map``)."""
    import jax.numpy as jnp

    hr = self.hier
    if not hr.ring:
      return hr.coarse
    cc = hr.coarse_channels
    return hr.coarse._replace(finalize=lambda x: jnp.clip(jnp.nan_to_num(x[..., :cc], posinf=1.0, neginf=-1.0), -1, 1))

  def _fine_plan_side(self) -> int:
    from genenv_jax import canvas

    m = self._margin()
    return canvas.plan(CHUNK + 2 * m, CHUNK + 2 * m, self.hier.fine.window).height

  def _fine_sig(self, seed: int, i: int, j: int) -> tuple:
    sketches = self._sketches(seed)
    if not sketches:
      return ()
    _, _, keys = self._fine_keys_coarse(i, j)
    return tuple(sorted({sid for a, b in keys for sid in self._coarse_sig(seed, a, b, sketches)}))

  def _render_tiling(self, seed, keys):
    import jax

    from genenv_jax import tiling

    tl = self.t.family.tiling
    if CHUNK % tl.cell_px:
      raise ValueError(f"cell_px={tl.cell_px}: the server's {CHUNK}-px chunks need a divisor of {CHUNK}")
    cells = CHUNK // tl.cell_px
    if self._tile_fn is None:
      self._tile_fn = tiling.make_tile_renderer(self.t, cells, self.temperature, -1)
    render, n_dev = self._tile_fn
    out = {}
    for a in range(0, len(keys), n_dev):
      part = keys[a : a + n_dev]
      org = np.array([[i * cells, j * cells] for i, j in part] + [[0, 0]] * (n_dev - len(part)), np.int32)
      x = np.asarray(jax.device_get(render(self.t.params, seed, org)))
      for k, v in zip(part, x):
        out[k] = v
    return out

  def _render_canvas(self, seed, keys):
    import jax
    import jax.numpy as jnp

    from genenv_jax import canvas

    m = self._margin()
    size = CHUNK + 2 * m
    if self._canvas_fn is None:
      self._canvas_fn = canvas.make_renderer(self.t.family, self.t.config, size, size, cpu_convolutions=self.kernels)
    render, pl = self._canvas_fn
    cv = self.t.family.canvas
    out = {}
    for i, j in keys:
      noise = canvas.initial_noise(seed, i * CHUNK - m, j * CHUNK - m, pl.height, pl.width, cv.channels)
      noise = self.temperature * noise
      x = render(self.t.params, jnp.asarray(noise), jnp.int32(0))
      out[(i, j)] = np.asarray(jax.device_get(x))[:size, :size]
    return out

  def _render_hier(self, seed, keys):
    """Fine chunks of a two-level model, each conditioned on the coarse map under it.

    The coarse map is itself served in chunks: ``CHUNK``-px chunks of the coarse canvas (one coarse window of
    margin, noise keyed to global coarse coordinates with the coarse tag, as ``canvas.render_hier``),
    cross-faded like the fine ones. So the coarse map under any fine chunk is a pure function of coordinates,
    and neighbouring fine chunks see the same large structures across their border.
    """
    import jax
    import jax.numpy as jnp

    from genenv_jax import canvas

    hr, f = self.hier, self.hier.factor
    m = self._margin()
    size = CHUNK + 2 * m
    if self._canvas_fn is None:
      self._canvas_fn = canvas.renderer_of(hr.fine, size, size, hr.fine.window, cpu_convolutions=self.kernels)
    render, pl = self._canvas_fn
    out = {}
    for i, j in keys:
      cy0, cx0, _ = self._fine_keys_coarse(i, j)
      side = -(-pl.height // f)
      coarse = self._coarse_map(seed, cy0, cx0, side, side)
      cond = np.repeat(np.repeat(coarse, f, 0), f, 1)[: pl.height, : pl.width]
      noise = (
        hr.fine_temperature
        * self.temperature
        * canvas.initial_noise(seed, i * CHUNK - m, j * CHUNK - m, pl.height, pl.width, hr.channels)
      )
      x = render(self.t.params, jnp.asarray(np.concatenate([noise, cond], -1)), jnp.int32(0))
      out[(i, j)] = np.asarray(jax.device_get(x))[:size, :size]
    return out

  def _coarse_chunks(self, seed, keys) -> dict:
    """Coarse-canvas chunks [CHUNK + 2mc, ...] (mc: the coarse window), rendered where missing (lock held)."""
    import jax
    import jax.numpy as jnp

    from genenv_jax import canvas

    hr = self.hier
    mc = hr.coarse.window
    size = CHUNK + 2 * mc
    if self._coarse_fn is None:
      self._coarse_fn = canvas.renderer_of(
        self._coarse_canvas(), size, size, hr.coarse.window, cpu_convolutions=self.kernels
      )
    render, pl = self._coarse_fn
    sketches = self._sketches(seed)
    out = {}
    for i, j in keys:
      sig = self._coarse_sig(seed, i, j, sketches)
      got = self._chunks.get((seed, ("coarse", i, j), sig))
      if got is None:
        noise = canvas.initial_noise(
          seed, i * CHUNK - mc, j * CHUNK - mc, pl.height, pl.width, hr.coarse_channels, canvas.COARSE_TAG
        )
        noise = jnp.asarray(hr.upper_temperature * self.temperature * noise)  # as canvas.render_hier
        if hr.top is not None:  # the top map under the chunk rides along as state channels
          noise = jnp.concatenate([noise, jnp.asarray(self._top_under(seed, i * CHUNK - mc, j * CHUNK - mc, pl))], -1)
        if not sig:
          x = render(self.t.params, noise, jnp.int32(0))
        else:
          known, hold = self._sketch_maps(sketches, sig, i * CHUNK - mc, j * CHUNK - mc, pl.height, pl.width)
          free = hr.coarse_channels - hr.channels + (hr.top.channels if hr.top is not None else 0)
          if free:  # a river field's channel and the top map's state channels: never held (hold time 0)
            known, hold = (np.concatenate([a, np.zeros(a.shape[:-1] + (free,), a.dtype)], -1)
                           for a in (known, hold))  # fmt: skip
          if self._sketch_fn is None:
            steps = hr.coarse.steps if hr.coarse.solver != "adaptive" else 16
            self._sketch_fn = canvas.inpainter_of(
              self._coarse_canvas(), size, size, steps, mc, hold_map=True, cpu_convolutions=self.kernels
            )
          x = self._sketch_fn[0](self.t.params, noise, jnp.asarray(known), jnp.asarray(hold), jnp.int32(0))
        got = np.asarray(jax.device_get(x))[:size, :size]
        self._chunks.put((seed, ("coarse", i, j), sig), got)
      out[(i, j)] = got
    return out

  def _top_under(self, seed, y0: int, x0: int, pl) -> np.ndarray:
    """A three-level model's top map under the coarse plan ``pl`` at coarse pixel (y0, x0), repeated up by
    ``top_factor / factor`` (lock held): assembled from top chunks as the coarse map under a fine chunk is."""
    r, mt = self.hier.top_factor // self.hier.factor, self.hier.top.window
    th, tw = -(-pl.height // r), -(-pl.width // r)
    top = self._assemble(self._top_chunks(seed, self._keys(y0 // r, x0 // r, th, tw, mt)), y0 // r, x0 // r, th, tw, mt)
    return np.repeat(np.repeat(top, r, 0), r, 1)[: pl.height, : pl.width]

  def _top_chunks(self, seed, keys) -> dict:
    """Top-canvas chunks [CHUNK + 2mt, ...] (mt: the top window; noise with the top tag), rendered where missing."""
    import jax
    import jax.numpy as jnp

    from genenv_jax import canvas

    hr = self.hier
    mt = hr.top.window
    size = CHUNK + 2 * mt
    if self._top_fn is None:
      self._top_fn = canvas.renderer_of(hr.top, size, size, mt, cpu_convolutions=self.kernels)
    render, pl = self._top_fn
    out = {}
    for i, j in keys:
      got = self._chunks.get((seed, ("top", i, j), ()))
      if got is None:
        noise = canvas.initial_noise(seed, i * CHUNK - mt, j * CHUNK - mt, pl.height, pl.width, hr.top.channels,
                                     canvas.TOP_TAG)  # fmt: skip
        scale = hr.upper_temperature * hr.top_temperature * self.temperature  # as canvas.top_under
        x = render(self.t.params, jnp.asarray(scale * noise), jnp.int32(0))
        got = np.asarray(jax.device_get(x))[:size, :size]
        self._chunks.put((seed, ("top", i, j), ()), got)
      out[(i, j)] = got
    return out

  def _sketch_maps(self, sketches, ids, y0: int, x0: int, h: int, w: int):
    """The coarse values the sketches ``ids`` paint over a window, and per value its hold time (1 - strength;
    later sketches paint over earlier ones)."""
    from genenv_jax import sketch as sketch_lib

    C = self.t.layout.num_channels
    known = np.zeros((h, w, C), np.float32)
    hold = np.zeros((h, w, C), np.float32)
    for sid, cy, cx, idx, strength in sketches:
      if sid not in ids:
        continue
      ya, yb, xa, xb = max(y0, cy), min(y0 + h, cy + idx.shape[0]), max(x0, cx), min(x0 + w, cx + idx.shape[1])
      sk = sketch_lib.from_classes(idx[ya - cy : yb - cy, xa - cx : xb - cx], self.t.layout)
      on = sk.keep > 0
      dst = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
      known[dst][on] = sk.known[on]
      hold[dst][on] = 1.0 - strength
    return known, hold

  def _keys(self, y0: int, x0: int, h: int, w: int, m: int | None = None) -> list[tuple[int, int]]:
    m = self._margin() if m is None else m
    i0, i1 = (y0 - m) // CHUNK, (y0 + h - 1 + m) // CHUNK
    j0, j1 = (x0 - m) // CHUNK, (x0 + w - 1 + m) // CHUNK
    return [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]

  def _assemble(self, chunks: dict, y0: int, x0: int, h: int, w: int, m: int | None = None) -> np.ndarray:
    """The model tensor [h, w, C] of a window from its chunks (cross-faded over the canvas margin ``m``)."""
    m = self._margin() if m is None else m
    keys = self._keys(y0, x0, h, w, m)
    c = chunks[keys[0]].shape[-1]
    acc = np.zeros((h, w, c), np.float32)
    wsum = np.zeros((h, w, 1), np.float32)
    for i, j in keys:
      v = chunks[(i, j)]
      # chunk (i, j) covers rows [i*CHUNK - m, (i+1)*CHUNK + m)
      cy0, cx0 = i * CHUNK - m, j * CHUNK - m
      ya, yb = max(y0, cy0), min(y0 + h, cy0 + CHUNK + 2 * m)
      xa, xb = max(x0, cx0), min(x0 + w, cx0 + CHUNK + 2 * m)
      if ya >= yb or xa >= xb:
        continue
      wt = (_ramp(np.arange(ya, yb), i, m)[:, None] * _ramp(np.arange(xa, xb), j, m)[None, :])[..., None]
      acc[ya - y0 : yb - y0, xa - x0 : xb - x0] += wt * v[ya - cy0 : yb - cy0, xa - cx0 : xb - cx0]
      wsum[ya - y0 : yb - y0, xa - x0 : xb - x0] += wt
    return acc / np.maximum(wsum, 1e-12)

  def tensor(self, seed: int, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """The model tensor [h, w, C] of one window."""
    return self._assemble(self._chunk_tensors(seed, self._keys(y0, x0, h, w)), y0, x0, h, w)

  def region_batch(self, seed, windows):
    """Windows of one seed: their chunks are rendered together (one device call per batch of chunks)."""
    if not self.unbounded:
      raise ValueError("this model draws no places (a sprite world or a family without large scenes); use /api/sample")
    keys = sorted({k for win in windows for k in self._keys(*win)})
    chunks = self._chunk_tensors(seed, keys)
    return [self._decode(self._assemble(chunks, *win)) for win in windows]

  def _decode(self, x: np.ndarray) -> Layers:
    d = self.t.layout.decode(x[None])
    return Layers(
      d["rgb"][0] if "rgb" in d else np.zeros((*x.shape[:2], 3), np.uint8),
      d["labels"][0] if "labels" in d else None,
      d["height"][0].astype(np.float32) if "height" in d else None,
    )

  def inpaint(self, seed, y0, x0, context: Layers, margin: int, mask, painted) -> Layers:
    import jax
    import jax.numpy as jnp

    from genenv_jax import canvas

    H, W = context.rgb.shape[:2]
    key = (H, W)
    if key not in self._inpaint_fns:
      cv = self.t.family.canvas if self.hier is None else self.hier.fine
      steps = cv.steps if cv.solver != "adaptive" else 16  # the model's own step count (midpoint)
      if self.hier is None:
        self._inpaint_fns[key] = canvas.make_inpainter(
          self.t.family, self.t.config, H, W, steps=steps, cpu_convolutions=self.kernels
        )
      else:
        self._inpaint_fns[key] = canvas.inpainter_of(cv, H, W, steps, cv.window, cpu_convolutions=self.kernels)
    fn, pl = self._inpaint_fns[key]
    if (pl.height, pl.width) != (H, W):
      raise ValueError(f"edit context {H}x{W}: must be a multiple of the window's stride")
    if self.hier is not None:
      return self._inpaint_hier(seed, y0, x0, context, margin, mask, painted)
    known, keep = self._known(context, margin, mask, painted)
    m, (h, w) = margin, mask.shape
    noise = self.temperature * canvas.initial_noise(seed, y0 - m, x0 - m, H, W, known.shape[-1])
    with self._lock:
      x = fn(self.t.params, jnp.asarray(noise), jnp.asarray(known), jnp.asarray(keep), jnp.int32(0))
    x = np.asarray(jax.device_get(x))
    return self._decode(x).crop(slice(m, m + h), slice(m, m + w))

  def _known(self, context: Layers, m: int, mask, painted):
    """The edit context as model values, and per value 1 where it is held (outside the mask; painted classes)."""
    lay = self.t.layout
    H, W = context.rgb.shape[:2]
    rec = {"rgb": context.rgb[None]}
    if context.labels is not None:
      rec["labels"] = context.labels[None]
    if context.height is not None:
      rec["height"] = np.clip(np.round(context.height * 65535.0), 0, 65535).astype(np.uint16)[None]
    rec = {k.key: rec[k.name] for k in lay.kinds()}
    known = lay.encode(rec)[0]
    h, w = mask.shape
    free = np.zeros((H, W), bool)
    free[m : m + h, m : m + w] = mask
    keep = np.repeat((~free)[..., None], known.shape[-1], -1).astype(np.float32)
    a, b = lay.one_hot
    if painted is not None and b > a:
      pf = np.full((H, W), -1, np.int32)
      pf[m : m + h, m : m + w] = np.where(mask, painted, -1)
      sel = pf >= 0
      known[sel, a:b] = np.eye(b - a, dtype=np.float32)[pf[sel]] * 2.0 - 1.0
      keep[sel, a:b] = 1.0
    return known, keep

  def _inpaint_hier(self, seed, y0, x0, context: Layers, margin: int, mask, painted) -> Layers:
    """A hierarchical model's edit: the fine ODE inpaints over the coarse map served under the window (its
    sketches included), which rides along as held state channels, as in ``_render_hier``."""
    import jax
    import jax.numpy as jnp

    from genenv_jax import canvas

    hr, f, m = self.hier, self.hier.factor, margin
    H, W = context.rgb.shape[:2]
    fn, _ = self._inpaint_fns[(H, W)]
    known, keep = self._known(context, m, mask, painted)
    # The coarse map under the context, from the served coarse chunks (aligned to the factor, then cropped).
    Y, X = y0 - m, x0 - m
    cy0, cx0 = Y // f, X // f
    ch, cw = -(-(Y - cy0 * f + H) // f), -(-(X - cx0 * f + W) // f)
    with self._lock:
      coarse = self._coarse_map(seed, cy0, cx0, ch, cw)
    cond = np.repeat(np.repeat(coarse, f, 0), f, 1)[Y - cy0 * f : Y - cy0 * f + H, X - cx0 * f : X - cx0 * f + W]
    noise = hr.fine_temperature * self.temperature * canvas.initial_noise(seed, Y, X, H, W, hr.channels)
    state = np.concatenate([noise, cond], -1)  # the coarse channels start (and stay) at the coarse map
    known = np.concatenate([known, cond], -1)
    keep = np.concatenate([keep, np.ones_like(cond)], -1)
    with self._lock:
      x = fn(self.t.params, jnp.asarray(state), jnp.asarray(known), jnp.asarray(keep), jnp.int32(0))
    x = np.asarray(jax.device_get(x))
    return self._decode(x).crop(slice(m, m + mask.shape[0]), slice(m, m + mask.shape[1]))

  def sample(self, seed, index, cond):
    import jax

    c = self.t.cond_index(cond)
    if self._sample_fn is None:
      self._sample_fn = jax.jit(lambda p, k, c: self.t.family.sample(p, k, 1, cond=c), static_argnums=(2,))
    key = jax.random.fold_in(jax.random.PRNGKey(int(seed)), int(index))
    with self._lock:
      x = self._sample_fn(self.t.params, key, None if c < 0 else c)
    return self._decode(np.asarray(jax.device_get(x))[0]).rgb


def _ramp(p: np.ndarray, i: int, m: int) -> np.ndarray:
  """Weight of chunk i at coordinates p: 1 on its core, linear to 0 across the 2m band it shares with a neighbour."""
  if m == 0:
    return ((p >= i * CHUNK) & (p < (i + 1) * CHUNK)).astype(np.float32)
  lo = np.clip((p - (i * CHUNK - m) + 0.5) / (2 * m), 0, 1)
  hi = np.clip(((i + 1) * CHUNK + m - p - 0.5) / (2 * m), 0, 1)
  return np.minimum(lo, hi).astype(np.float32)


def open_source(
  world: str = "", workdir: str = "", model: str = "", step: int | None = None, cpu_convolutions: str = "auto"
) -> Source:
  """The source of ``serve.py``: exactly one of a world, a workdir or a shipped model."""
  given = [n for n, v in (("--world", world), ("--workdir", workdir), ("--model", model)) if v]
  if len(given) != 1:
    raise ValueError(f"give exactly one of --world, --workdir, --model (got {given or 'none'})")
  if world:
    from genenv_jax.scenes import WORLDS

    if world not in WORLDS:
      raise ValueError(f"world={world!r}: unknown; allowed: {sorted(WORLDS)}")
    return WorldSource(world)
  if model:
    from genenv_jax import models

    return ModelSource(models.load(model), cpu_convolutions=cpu_convolutions)
  from genenv_jax import trained as trained_lib

  return ModelSource(trained_lib.load(workdir, step), cpu_convolutions=cpu_convolutions)
