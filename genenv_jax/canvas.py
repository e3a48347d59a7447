"""Scenes larger than the training size from an ODE family: one canvas-wide ODE, windowed velocity.

The canvas starts as Gaussian noise keyed by global pixel coordinates (any
region of the initial noise is reproducible from the seed alone). At every
solver evaluation the velocity of the whole canvas is the weighted mean of
the network's velocity on overlapping training-size windows (stride half a
window, tent weights; MultiDiffusion, Bar-Tal et al. 2023): every window the
network sees looks like a training image, and neighbouring windows agree on
their overlap because they are averaged into one field before each step.
Windows are evaluated in chunks over a ``data`` mesh axis (sharded over the
devices), so the network's memory is bounded by one chunk.

Memory bound, stated honestly: unlike the GAN's tiles (streamed strip by
strip, bounded by one strip), the canvas is integrated as a whole, so the
solver's state is about ``8 x H x W x C`` float32 values beside one chunk of
windows: ~0.3 GB for a 1024x1024 city (9 channels), ~4.8 GB at 4096x4096.
Compute is ~4 window evaluations per pixel per network evaluation (NFE).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from genenv_jax import cpu_kernels, parallel
from genenv_jax.families import flow_matching as fm
from genenv_jax.scenes import fields

MAX_PIXELS = 4096 * 4096  # the whole canvas is in memory (see the module doc)
_TAG = 0xCA7
COARSE_TAG = _TAG + 16  # a two-level model's coarse canvas: its own noise, never the fine level's
TOP_TAG = _TAG + 32  # a three-level model's top canvas: its own noise again


class Plan(NamedTuple):
  height: int  # the canvas drawn: the scene rounded up to whole strides
  width: int
  origins: np.ndarray  # [n, 2] window origins
  window: int


def plan(height: int, width: int, window: int) -> Plan:
  """Window origins covering ``height x width`` (rounded up to a multiple of window/2) at stride window/2."""
  if height < 1 or width < 1:
    raise ValueError(f"scene_size={height}x{width}: must be positive")
  stride = window // 2
  hh = max(window, -(-height // stride) * stride)
  ww = max(window, -(-width // stride) * stride)
  ys, xs = range(0, hh - window + 1, stride), range(0, ww - window + 1, stride)
  return Plan(hh, ww, np.array([(y, x) for y in ys for x in xs], np.int32), window)


def tent(window: int) -> np.ndarray:
  """[window, window] weights: highest at the centre, 1/window at the edges (never 0)."""
  r = 1.0 - np.abs(np.arange(window) + 0.5 - window / 2) / (window / 2)
  r = np.maximum(r, 1.0 / window)
  return np.outer(r, r).astype(np.float32)


def initial_noise(seed: int, y0: int, x0: int, height: int, width: int, channels: int, tag: int = _TAG) -> np.ndarray:
  """[h, w, C] standard normal noise keyed by (seed, global row, global column, channel) (Box-Muller)."""
  ys = np.arange(y0, y0 + height)[:, None, None]
  xs = np.arange(x0, x0 + width)[None, :, None]
  cs = np.arange(channels)[None, None, :]
  u1 = fields.uniform(seed, tag, ys, xs, cs)
  u2 = fields.uniform(seed, tag + 1, ys, xs, cs)
  return (np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)).astype(np.float32)


def check(family, config, window: int | None) -> int:
  """The window size; clear errors before anything compiles."""
  cv = family.canvas
  if cv is None:
    raise ValueError(f"family={config.family!r}: samples no ODE; its large scenes come from tiling (GAN)")
  window = cv.window if window is None else window
  if not isinstance(window, int) or window < 8 or window % 8:
    raise ValueError(f"window={window!r}: must be a multiple of 8 (default: the training size {cv.window})")
  if cv.attention and window != cv.window:
    raise ValueError(
      f"window={window} with fm.attention=True: attention at the lowest resolution spans the whole window, so a "
      f"network with attention only sees windows of its training size {cv.window} (or train with fm.attention=False)"
    )
  return window


def make_velocity(family, config, height: int, width: int, window=None, chunk: int = 16, mesh=None):
  """(params, x [H', W', C], t, label) -> the canvas-wide velocity; and its ``Plan`` (H' x W' is the plan's size)."""
  window = check(family, config, window)
  return canvas_velocity_of(family.canvas, height, width, window, chunk, mesh)


def canvas_velocity_of(cv, height: int, width: int, window: int, chunk: int = 16, mesh=None):
  """``make_velocity`` for one ``base.Canvas`` (a level of a hierarchical model, or a family's own)."""
  mesh = mesh or parallel.local_mesh()
  pl = plan(height, width, window)
  k = mesh.devices.size
  per_call = k * chunk
  nw = len(pl.origins)
  padded = -(-nw // per_call) * per_call
  origins = np.concatenate([pl.origins, np.repeat(pl.origins[:1], padded - nw, 0)])
  weight = jnp.asarray(tent(window))[..., None]
  wsum = np.zeros((pl.height, pl.width, 1), np.float32)
  for y, x in pl.origins:
    wsum[y : y + window, x : x + window] += np.asarray(weight)
  wins_sharding = NamedSharding(mesh, P(None, "data"))
  valid = jnp.asarray(np.arange(padded) < nw, jnp.float32)

  def canvas_velocity(params, x, t, label):
    o = jnp.asarray(origins)
    wins = jax.vmap(lambda oo: jax.lax.dynamic_slice(x, (oo[0], oo[1], 0), (window, window, x.shape[-1])))(o)
    wins = jax.lax.with_sharding_constraint(wins.reshape(padded // per_call, per_call, *wins.shape[1:]), wins_sharding)
    lab = jnp.full((per_call,), label, jnp.int32)
    tt = jnp.full((per_call,), t)
    v = jax.lax.map(lambda w: cv.velocity(params, w, tt, lab), wins).reshape(padded, window, window, -1)
    v = v * weight * valid[:, None, None, None]

    def add(i, acc):
      oo = o[i]
      cur = jax.lax.dynamic_slice(acc, (oo[0], oo[1], 0), (window, window, acc.shape[-1]))
      return jax.lax.dynamic_update_slice(acc, cur + v[i], (oo[0], oo[1], 0))

    return jax.lax.fori_loop(0, padded, add, jnp.zeros_like(x)) / wsum

  return canvas_velocity, pl


def make_renderer(
  family, config, height: int, width: int, window=None, chunk: int = 16, mesh=None, cpu_convolutions: str = "xla"
):
  """Jitted (params, noise [H', W', C], label) -> [H', W', C] model tensor; and its ``Plan``.

  ``cpu_convolutions``: XLA:CPU's convolution kernels (``cpu_kernels``; 'eigen' uses both cores of a small
  CPU, equal up to float rounding; accelerators ignore it).
  """
  return renderer_of(family.canvas, height, width, check(family, config, window), chunk, mesh, cpu_convolutions)


def _jit_options(mesh, cpu_convolutions: str):
  return cpu_kernels.compiler_options(cpu_convolutions, mesh.devices.flat[0].platform)


def renderer_of(cv, height: int, width: int, window: int, chunk: int = 16, mesh=None, cpu_convolutions: str = "xla"):
  """``make_renderer`` for one ``base.Canvas``."""
  mesh = mesh or parallel.local_mesh()
  canvas_velocity, pl = canvas_velocity_of(cv, height, width, window, chunk, mesh)

  def render(params, noise, label):
    v = lambda x, t: canvas_velocity(params, x[0], t[0], label)[None]  # noqa: E731
    return cv.finalize(fm.solve(v, noise[None], cv.solver, cv.steps))[0]

  repl = NamedSharding(mesh, P())
  options = _jit_options(mesh, cpu_convolutions)
  return jax.jit(render, in_shardings=(repl, repl, None), out_shardings=repl, compiler_options=options), pl


def make_inpainter(
  family,
  config,
  height: int,
  width: int,
  steps: int = 32,
  window=None,
  chunk: int = 16,
  mesh=None,
  cpu_convolutions: str = "xla",
):
  """Jitted (params, noise, known, keep, label) -> [H', W', C]: the canvas ODE with ``known`` held where ``keep``.

  Inpainting by replacement (the RePaint idea on the straight path): after
  every midpoint step to time t, each kept value is set to where the path of
  its known value is at t, ``(1 - t) * noise + t * known``; the free values
  follow the velocity of a canvas whose kept part looks like the known one at
  every time, so they join it. ``keep`` is per value ([H', W', C] in {0, 1}):
  holding only a pixel's label channels paints its class and lets the model
  draw its colour and height. At t = 1 every kept value is exactly its known
  value (nothing outside the mask changes).
  """
  window = check(family, config, window)
  return inpainter_of(family.canvas, height, width, steps, window, chunk, mesh, cpu_convolutions=cpu_convolutions)


def inpainter_of(
  cv,
  height: int,
  width: int,
  steps: int,
  window: int,
  chunk: int = 16,
  mesh=None,
  hold_until=1.0,
  hold_map=False,
  cpu_convolutions: str = "xla",
):
  """``make_inpainter`` for one ``base.Canvas``; kept values are held only at times ``<= hold_until``
  (a sketch's strength: 1 holds them to the end, 0 never).

  ``hold_map``: ``keep`` is instead a per-value time: each value is held at times ``<= keep`` (0 never;
  the server's sketches, each with its own strength, ``keep = 1 - strength`` where a sketch paints).
  """
  mesh = mesh or parallel.local_mesh()
  canvas_velocity, pl = canvas_velocity_of(cv, height, width, window, chunk, mesh)
  ts = jnp.linspace(0.0, 1.0, steps + 1)

  def render(params, noise, known, keep, label):
    def step(x, i):
      t0, t1 = ts[i], ts[i + 1]
      dt = t1 - t0
      mid = x + 0.5 * dt * canvas_velocity(params, x, t0, label)
      x = x + dt * canvas_velocity(params, mid, t0 + 0.5 * dt, label)
      held = (t1 <= keep + 1e-6) * (keep > 0) if hold_map else keep * (t1 <= hold_until + 1e-6)
      x = held * ((1.0 - t1) * noise + t1 * known) + (1.0 - held) * x
      return x, None

    x, _ = jax.lax.scan(step, noise, jnp.arange(steps))
    return cv.finalize(x[None])[0]

  repl = NamedSharding(mesh, P())
  shardings = dict(in_shardings=(repl, repl, repl, repl, None), out_shardings=repl)
  return jax.jit(render, **shardings, compiler_options=_jit_options(mesh, cpu_convolutions)), pl


def render_scene(
  trained, height, width, seed=0, temperature=1.0, cond=-1, window=None, mesh=None, sketch=None, sketch_strength=1.0
) -> np.ndarray:
  """A ``height x width`` scene [h, w, C] in [-1, 1], from the seed's coordinate-keyed noise.

  ``sketch``: a ``genenv_jax.sketch.Sketch`` for a hierarchical model (its coarse map is held
  up to ``1 - sketch_strength``; see ``render_hier``).
  """
  cv = trained.family.canvas
  if height * width > MAX_PIXELS:
    raise ValueError(
      f"scene_size={height}x{width}: the canvas ODE holds the whole scene in memory; at most "
      f"{MAX_PIXELS / 1e6:.0f} Mpixels (4096x4096) for {trained.config.family}"
    )
  if "hier" in (trained.family.extras or {}):
    return render_hier(trained, height, width, seed, temperature, cond, mesh, sketch, sketch_strength)
  if sketch is not None:
    raise ValueError(
      f"--sketch: family={trained.config.family!r} has no coarse level to hold a sketch; train a hierarchical "
      "model (configs/fm_city_hier.py, configs/fm_terrain_hier.py)"
    )
  render, pl = make_renderer(trained.family, trained.config, height, width, window, mesh=mesh)
  noise = temperature * initial_noise(seed, 0, 0, pl.height, pl.width, cv.channels)
  label = jnp.int32(max(cond, 0))
  out = render(trained.params, jnp.asarray(noise), label)
  return np.asarray(jax.device_get(out))[:height, :width]


def _levels(trained) -> list:
  """The canvases whose ODEs draw a scene: the family's own, or a hierarchical model's (top,) coarse and fine."""
  hr = (trained.family.extras or {}).get("hier")
  if hr is None:
    return [trained.family.canvas]
  return ([hr.top] if hr.top is not None else []) + [hr.coarse, hr.fine]


def zero_velocity(trained, params, seed: int = 0) -> bool:
  """Whether every level's network gives exactly zero velocity on random windows at random times.

  A network whose last layer is zero (an untrained flow-matching U-Net: ``nets.unet`` starts its output
  convolution at zero) does for any input; any other gives nonzero values on random input.
  """
  rng = np.random.default_rng(seed)
  for cv in _levels(trained):
    x = jnp.asarray(rng.standard_normal((2, cv.window, cv.window, cv.channels)), jnp.float32)
    t = jnp.asarray(rng.uniform(0.05, 0.95, 2), jnp.float32)
    v = cv.velocity(params, x, t, jnp.zeros((2,), jnp.int32))
    if bool(jnp.any(v != 0)):
      return False
  return True


def still_scene(trained, height, width, seed=0, temperature=1.0) -> np.ndarray:
  """What ``render_scene`` returns when every level's velocity is zero (``zero_velocity``): the finalized noise.

  The ODE then leaves its starting noise where it is (x + dt * 0 = x exactly), so the result is bit for bit
  the same without the network's minutes per scene. ``large_eval`` draws an untrained flow-matching model's
  scenes (the floor) this way.
  """
  hr = (trained.family.extras or {}).get("hier")
  cv = hr.fine if hr is not None else trained.family.canvas
  C = hr.channels if hr is not None else cv.channels
  pl = plan(height, width, cv.window)
  scale = temperature if hr is None else hr.fine_temperature * temperature  # as render_hier: bit for bit
  x = scale * initial_noise(seed, 0, 0, pl.height, pl.width, C)
  if hr is not None:  # the fine level's state carries the coarse map; its finalize drops it
    x = np.concatenate([x, np.zeros_like(x)], -1)
  return np.asarray(jax.device_get(cv.finalize(jnp.asarray(x))))[:height, :width]


def coarse_canvas(trained, height, width, seed=0, temperature=1.0, cond=-1, mesh=None, top=None):
  """The coarse map a hierarchical model draws under a ``height x width`` scene (no sketch), [ch, cw, C] on the
  device: what ``render_hier`` repeats up under the fine level (``tools/hier_levels.py`` reads it alone), its small
  water pieces pruned (``hier.min_water_blocks``, ``Hier.prune``).

  ``top``: for a three-level model, a given top map ([ceil(ch'/r), ceil(cw'/r), CT] for the coarse plan ch' x cw'
  and r = top_factor / factor, CT the top map's channels; e.g. a real region's ``data.coarse.top_map``) used
  instead of drawing one:
  the coarse level alone over it, as ``render_hier``'s ``coarse`` is for the fine level."""
  hr = trained.family.extras["hier"]
  S, f, CW = hr.fine.window, hr.factor, hr.coarse.window
  pl = plan(height, width, S)
  ch, cw = -(-pl.height // f), -(-pl.width // f)
  cpl = plan(ch, cw, CW)
  mesh = mesh or parallel.local_mesh()
  label = jnp.int32(max(cond, 0))
  CC = hr.coarse_channels  # C, and a river field's channel (hier.coarse_field)
  cnoise = hr.upper_temperature * temperature * initial_noise(seed, 0, 0, cpl.height, cpl.width, CC, tag=COARSE_TAG)
  if top is None:
    top = top_under(trained, cpl, seed, temperature, label, mesh)
  else:
    if hr.top is None:
      raise ValueError("a top map for a two-level model: it has no top level")
    r = hr.top_factor // hr.factor
    want = (-(-cpl.height // r), -(-cpl.width // r), hr.top.channels)
    if tuple(top.shape) != want:
      raise ValueError(f"top map of shape {tuple(top.shape)}: must be {want} for a {height}x{width} scene")
    top = jnp.repeat(jnp.repeat(jnp.asarray(top, jnp.float32), r, 0), r, 1)[: cpl.height, : cpl.width]
  render_c, _ = renderer_of(hr.coarse, ch, cw, CW, mesh=mesh)
  return hr.prune(render_c(trained.params, _with_cond(jnp.asarray(cnoise), top), label)[:ch, :cw])


def _with_cond(x, cond):
  """A level's starting state: its noise, and after it the map of the level above (a three-level coarse level)."""
  return x if cond is None else jnp.concatenate([x, cond], -1)


def top_under(trained, cpl: Plan, seed, temperature, label, mesh, sketch_known=None, sketch_keep=None, strength=1.0):
  """A three-level model's top map under a coarse plan, repeated up to [cpl.height, cpl.width, CT] (None for
  two levels; CT: ``hr.top.channels``): the top canvas (its own noise tag) over the coarse plan at
  ``factor / top_factor``.

  ``sketch_known``/``sketch_keep`` ([cpl.height, cpl.width, C], a sketch at the coarse level's scale): their block
  means are held in the top ODE like the sketch in the coarse one (``render_hier``), only on blocks the sketch
  covers whole, so the top map agrees with the sketch (with ``hier.top_trace``, its trace channel too: the
  sketch's ``data.coarse.trace``).
  """
  hr = trained.family.extras["hier"]
  if hr.top is None:
    return None
  S, C, r, CT = hr.fine.window, hr.channels, hr.top_factor // hr.factor, hr.top.channels
  th, tw = -(-cpl.height // r), -(-cpl.width // r)
  tpl = plan(th, tw, S)
  scale = hr.upper_temperature * hr.top_temperature * temperature  # hier.upper_temperature, hier.top_temperature
  tnoise = jnp.asarray(scale * initial_noise(seed, 0, 0, tpl.height, tpl.width, CT, tag=TOP_TAG))
  if sketch_known is None:
    render_t, _ = renderer_of(hr.top, th, tw, S, mesh=mesh)
    xt = render_t(trained.params, tnoise, label)
  else:
    from genenv_jax.data import coarse as coarse_data

    def blocks(a, values=True):  # values pooled in the maps' share space; a keep mask by plain means
      big = np.zeros((th * r, tw * r, C), np.float32)
      big[: a.shape[0], : a.shape[1]] = a
      out = np.zeros((tpl.height, tpl.width, CT), np.float32)
      if values:
        out[:th, :tw] = coarse_data.top_map(big, r, hr.one_hot, hr.share_power, hr.traced)
      else:  # the trace channel is held where its class's channel is, over the whole block
        kept = coarse_data.downsample(big, r)
        if hr.traced is not None:
          c = hr.one_hot[0] + hr.traced[0]
          kept = np.concatenate([kept, kept[..., c : c + 1]], -1)
        out[:th, :tw] = kept
      return out

    known, keep = blocks(sketch_known), (blocks(sketch_keep, False) > 1.0 - 1e-6).astype(np.float32)
    steps = hr.top.steps if hr.top.solver != "adaptive" else 16
    paint, _ = inpainter_of(hr.top, th, tw, steps, S, mesh=mesh, hold_until=1.0 - strength)
    xt = paint(trained.params, tnoise, jnp.asarray(known), jnp.asarray(keep), label)
  return jnp.repeat(jnp.repeat(xt[:th, :tw], r, 0), r, 1)[: cpl.height, : cpl.width]


def render_hier(
  trained, height, width, seed=0, temperature=1.0, cond=-1, mesh=None, sketch=None, strength=1.0, coarse=None
):
  """A hierarchical model's ``height x width`` scene: the coarse canvas, then the fine canvas under it.

  A three-level model (``hier.top`` set) draws its top canvas first and carries it, repeated up, under the
  coarse canvas the way the coarse map rides under the fine one (``top_under``); a sketch is held in both.

  ``coarse``: a given coarse map ([ceil(height/f), ceil(width/f), C] in the model's channels, e.g. a real
  region's block means from ``data.coarse.downsample``) used instead of drawing one: the fine level alone
  (``tools/hier_levels.py`` reads the two levels apart this way).

  The coarse canvas covers the fine plan at 1/factor (its own noise tag, so
  the two levels never share noise); it is repeated up by ``factor`` and
  rides along the fine ODE as state channels with zero velocity. With a
  ``sketch`` the coarse ODE holds the sketch's values (its label channels, or
  its height) on their straight path up to time ``1 - strength``
  (``inpainter_of``'s ``hold_until``): strength 0 keeps the sketch to the end,
  1 never holds it (the sketch is ignored); in between, the layout is set
  early and the model redraws it late. A coarse level that draws a river
  field (``hier.coarse_field``) draws it freely under a sketch; its rivers
  are carved over the whole coarse canvas (``Hier.carve``), so along the
  scene's edges (2 coarse pixels) they are read from the scene alone, where
  the server reads the world beyond. With ``hier.min_water_blocks`` the
  scene's coarse map is pruned whole (``Hier.prune``), its pieces measured
  within the scene; a piece holding a block a sketch paints is kept.
  """
  hr = trained.family.extras["hier"]
  S, f, C = hr.fine.window, hr.factor, hr.channels
  if not 0.0 <= strength <= 1.0:
    raise ValueError(f"sketch_strength={strength!r}: must be in [0, 1] (0 keeps the sketch's layout, 1 ignores it)")
  mesh = mesh or parallel.local_mesh()
  pl = plan(height, width, S)
  ch, cw = -(-pl.height // f), -(-pl.width // f)
  label = jnp.int32(max(cond, 0))
  cpl = plan(ch, cw, hr.coarse.window)
  CC = hr.coarse_channels  # C, and a river field's channel (hier.coarse_field)
  cnoise = hr.upper_temperature * temperature * initial_noise(seed, 0, 0, cpl.height, cpl.width, CC, tag=COARSE_TAG)
  if coarse is not None:
    if sketch is not None:
      raise ValueError("a coarse map and a sketch: give one (a sketch is held in the coarse level's ODE)")
    if tuple(coarse.shape) != (ch, cw, C):
      raise ValueError(f"coarse map of shape {tuple(coarse.shape)}: must be {(ch, cw, C)} for a {height}x{width} scene")
    xc = jnp.asarray(coarse, jnp.float32)
  elif sketch is None:
    xc = coarse_canvas(trained, height, width, seed, temperature, cond, mesh)
  else:
    sketch.check_scene(height, width, f)
    known = np.zeros((cpl.height, cpl.width, C), np.float32)
    keep = np.zeros_like(known)
    sh, sw = sketch.known.shape[:2]
    known[:sh, :sw], keep[:sh, :sw] = sketch.known, sketch.keep
    top = top_under(trained, cpl, seed, temperature, label, mesh, known, keep, strength)
    if CC > C:  # a river field (hier.coarse_field) is never held: the model draws it under the sketch
      pad = np.zeros(known.shape[:-1] + (CC - C,), np.float32)
      known, keep = np.concatenate([known, pad], -1), np.concatenate([keep, pad], -1)
    if top is not None:  # the top map rides along in the coarse state, never held
      pad = np.zeros(known.shape[:-1] + (hr.top.channels,), np.float32)
      known, keep = np.concatenate([known, pad], -1), np.concatenate([keep, pad], -1)
    steps = hr.coarse.steps if hr.coarse.solver != "adaptive" else 16
    paint, _ = inpainter_of(hr.coarse, ch, cw, steps, hr.coarse.window, mesh=mesh, hold_until=1.0 - strength)
    xc = paint(trained.params, _with_cond(jnp.asarray(cnoise), top), jnp.asarray(known), jnp.asarray(keep), label)
    a, b = hr.one_hot  # a water piece holding a block the sketch paints is never pruned
    held = keep[:ch, :cw, a:b].any(-1) if strength < 1.0 else None
    xc = hr.prune(xc[:ch, :cw], held)
  cond_map = jnp.repeat(jnp.repeat(xc[:ch, :cw], f, 0), f, 1)[: pl.height, : pl.width]  # stays on the device
  render_f, _ = renderer_of(hr.fine, height, width, S, mesh=mesh)
  noise = hr.fine_temperature * temperature * initial_noise(seed, 0, 0, pl.height, pl.width, C)
  out = render_f(trained.params, jnp.concatenate([jnp.asarray(noise), cond_map], -1), label)
  return np.asarray(jax.device_get(out))[:height, :width]
