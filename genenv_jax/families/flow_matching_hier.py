"""Two- or three-level flow matching: a coarse map of the world, then the detail under it.

A model that only sees an S-px window cannot learn what is larger than the
window. This family holds two velocity fields, trained together in one step
(one optimiser over ``{'coarse', 'fine'}``):

* **coarse**: flow matching on the world's large regions averaged down by
  ``hier.factor`` (``batch['x_coarse']``, see ``genenv_jax.data.coarse``):
  one coarse pixel is ``factor x factor`` world pixels, so its S-px window
  spans ``factor x S`` pixels of the world (rivers, lakes, districts). Its
  label channels are class shares (no one-hot snapping at this level);
* **fine**: flow matching on the world's S-px windows, conditioned on the
  coarse map under the window (the window's block means, repeated back to
  full size, as extra input channels; cascaded diffusion's conditioning
  augmentation adds ``hier.cond_noise`` Gaussian noise to them in training,
  so the fine level tolerates the coarse level's own errors).

Large scenes (``genenv_jax.canvas.render_hier``): the coarse canvas is drawn
first (the canvas ODE, windowed velocity), repeated up by ``factor``, and
carried as extra state channels of the fine canvas whose velocity is zero,
so every fine window sees its own coarse map and neighbouring windows agree.
A scene stays a pure function of (params, seed, coordinates). A hand-drawn
coarse map (``--sketch``) is held in the coarse ODE's label channels up to a
time set by its strength (``canvas.render_hier``).

Training phases (``hier.fine_steps``): 0 (the default) trains both levels in
every step. N > 0 trains both for the first N steps and then the coarse level
alone for the rest of ``train.num_steps`` (the fine level's parameters and
their EMA are kept as they were at step N; the learning-rate schedule starts
again at N). The coarse level learns what is larger than the fine window from
far fewer maps than the fine level has windows, and needs more steps
(``docs/large-scenes.md``). The coarse-only steps log no ``loss`` (the fine
level's training loss is not computed), only ``coarse_loss`` and ``grad_norm``.

A third level (``hier.top_factor``, 0 for none): a **top** level learns
regions ``top_factor x S`` pixels wide averaged down by ``top_factor``
(``batch['x_top']``), and the coarse level is conditioned on the top map
under its window exactly as the fine level is on the coarse map (block means
by ``top_factor / factor``, repeated back, ``hier.cond_noise``). The top
window spans ``top_factor x S`` world pixels (a 32-px window at 32: 1024
city pixels, where real's lake systems fit) while the coarse level keeps the
fine level's 4x4 guidance per window. Coarse-only steps (``hier.fine_steps``)
train the top and coarse levels together. Scenes: top canvas, coarse canvas
over it, fine canvas over that (``canvas.render_hier``).

A river is 1 px of a 32-px top block: next to nothing in the top map's block
means, so the top level cannot lay out where rivers join lakes.
``hier.top_trace`` (a label class, e.g. ``'water'``; '' for none) gives the
top map one more channel, ``data.coarse.trace``: the share of each top
block's coarse pixels where that class covers at least ``1/factor`` (a 1-px
line across the block). The top level draws it with the rest; the coarse
level is conditioned on it (computed from its own map in training, as the
top map's other channels are); the fine level never sees it.

``hier.coarse_window`` (0: S): the coarse level's training maps and its
sampling windows, in coarse pixels. At S a coarse window spans ``factor x S``
world pixels, the most it learns from at once; wider maps (regions of
``factor x coarse_window`` px) cost their area in every step (for the city's
rivers they did not help: ``docs/large-scenes.md``).

``hier.coarse_widths`` sizes the coarse U-Net and, with a top level, the top
one; ``hier.top_widths`` (``()``: the same) sizes the top U-Net apart, so a
coarse level of another size can train under a kept top level.

A river is a one-block share at the coarse level too, which a flow must land on exactly along the river's
length; drawn by windows, rivers come out in fragments. ``hier.coarse_field`` (a label class, e.g. ``'water'``;
'' for none) gives the coarse map one more channel: the block mean of a signed field whose zero set runs along
the class's thin parts (``data.river_field.signed_field``, from the region's labels), which has no loose ends
whatever its errors. The coarse level draws it with the rest (trained on it; its conditions, and the fine
level's, are the C channels alone); its finalize smooths the drawn field (3x3), and where it changes sign
between neighbouring blocks raises the class's share to ``hier.river_share`` (``river_field.carve``; 0.5, a
4-px river across an 8-px block: at 0.25 the fine level drew the rivers broken by blocks, ``docs/large-scenes.md``)
before the level under it sees the map. The map handed down has the C channels alone, as without the field.

Single samples (``sample``, what ``eval.py`` scores): a coarse window is
drawn, its centre ``S/factor`` block is repeated up and the fine level draws
the window under it. The likelihood of the pair is not reported (a density
of x given a function of x is not bits/dim of x); the held-out losses of
both levels are (``loss``, ``coarse_loss``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from genenv_jax import config_utils
from genenv_jax.data import coarse as coarse_data
from genenv_jax.data import river_field
from genenv_jax.families import base
from genenv_jax.families import flow_matching as fm
from genenv_jax.nets import unet

ROLES = base.MetricRoles(shown=("loss", "coarse_loss", "top_loss"), compare=("loss", "coarse_loss", "grad_norm"))
OPTIMIZERS = {"fm": "lr"}


class Hier(NamedTuple):
  """How the two levels render a large scene (``genenv_jax.canvas.render_hier``).

  Attributes:
    coarse: the coarse level's ``base.Canvas`` (C channels, label shares clipped, not snapped).
    fine: the fine level's ``base.Canvas`` over 2C state channels: the scene and, after it, the
      coarse map repeated up (velocity 0 there); its finalize drops the coarse channels.
    factor: world pixels per coarse pixel, each way.
    channels: C, the model tensor's channels.
    one_hot: [start, stop) of the label channels (the sketch's classes go there).
    top: a three-level model's top ``base.Canvas`` (its ``channels``: C, or C + 1 with ``hier.top_trace``:
      ``data.coarse.trace``'s channel last), else None; then ``coarse`` is over C + ``top.channels`` state
      channels: its map and, after it, the top map repeated up (velocity 0 there).
    top_factor: world pixels per top pixel, each way (0: two levels).
    traced: ``(k, factor)``: ``hier.top_trace``'s class index and the coarse factor (``data.coarse.top_map``'s
      argument), or None.
    share_power: ``hier.share_power``: the coarse maps' label channels hold each class's share of the block
      raised to it (``data.coarse.emphasize``; 1: plain block means); a coarse map at the top level's scale is
      pooled with ``data.coarse.pool``.
    fine_temperature: ``hier.fine_temperature``: the fine level's starting noise is scaled by it, on top of the
      scene's temperature (sampling only; 1: as trained). Below 1 the fine level draws fewer water specks.
    upper_temperature: ``hier.upper_temperature``: the coarse (and a three-level model's top) level's starting
      noise is scaled by it, on top of the scene's temperature (sampling only; 1: as trained). Above 1 the upper
      levels draw larger lakes and more water.
    top_temperature: ``hier.top_temperature``: a three-level model's top level's starting noise is scaled by it
      as well, on top of ``upper_temperature`` (sampling only; 1: as trained). Above 1 the top map lays out
      larger lakes, and the coarse level, at its own temperature, draws them.
    field: ``hier.coarse_field``'s class index, or None: the coarse level draws ``coarse_channels`` = C + 1
      channels (the river field last) and its finalize carves the rivers into the C it hands down.
    river_share: ``hier.river_share``: the class's share a block where the field changes sign is given
      (sampling only; ``river_field.carve``).
    prune_class: the world's ``water`` class index where ``min_water_blocks`` prunes, else None.
    min_water_blocks: ``hier.min_water_blocks``: pieces of coarse water smaller than this many blocks are given
      to the other classes before the level under draws (sampling only; ``river_field.prune``; 0: none).
  """

  coarse: base.Canvas
  fine: base.Canvas
  factor: int
  channels: int
  one_hot: tuple[int, int]
  top: base.Canvas | None = None
  top_factor: int = 0
  traced: tuple[int, int] | None = None
  share_power: float = 1.0
  fine_temperature: float = 1.0
  upper_temperature: float = 1.0
  top_temperature: float = 1.0
  field: int | None = None
  river_share: float = 0.5
  prune_class: int | None = None
  min_water_blocks: int = 0

  @property
  def coarse_channels(self) -> int:
    """The channels the coarse level draws (its starting noise's): C, and the river field with ``field``."""
    return self.channels + (self.field is not None)

  @property
  def ring(self) -> int:
    """Coarse pixels ``carve`` and ``prune`` read around a pixel: 2 for a river field (its 3x3 mean and the next
    pixel's sign), and ``min_water_blocks - 1`` more for pruning (a piece of that many blocks lies within that
    distance); 0 where each pixel is read alone. The server assembles its coarse chunks with this ring first."""
    prune = self.min_water_blocks - 1 if self.pruning else 0
    return (2 if self.field is not None else 0) + prune

  @property
  def pruning(self) -> bool:
    return self.prune_class is not None and self.min_water_blocks > 1

  def carve(self, x):
    """A drawn coarse map [..., coarse_channels] (clipped) -> the C-channel map: with a river field, its rivers
    carved in (``river_field.carve``); the coarse level's finalize, and the server's on its assembled chunks."""
    if self.field is None:
      return x[..., : self.channels]
    C = self.channels
    return river_field.carve(x[..., :C], x[..., C], self.one_hot, self.field, self.river_share, self.share_power)

  def prune(self, x, protect=None):
    """A carved coarse map [..., C] -> the map the fine level sees: with ``min_water_blocks``, its small water
    pieces given to the other classes (``river_field.prune``), over the map as given (a scene's whole coarse map;
    the server's assembled map with its ``ring``). ``protect`` ([..., h, w] bool, e.g. what a sketch holds):
    a piece holding such a block is kept whatever its size."""
    if not self.pruning:
      return x
    return river_field.prune(x, self.one_hot, self.prune_class, self.min_water_blocks, self.share_power, protect)


def check_fine_temperature(t, name: str = "hier.fine_temperature") -> float:
  """``hier.fine_temperature`` as a float, or a ValueError naming it (as ``name``: the config key, or the flag
  the user typed) and what is allowed."""
  meaning = "the fine level's noise scale when sampling; 1: as trained, lower: a colder fine level"
  return config_utils.in_unit_interval(name, t, meaning)


UPPER_TEMPERATURE_MAX = 2.0


def _noise_scale(name: str, t, meaning: str) -> float:
  """A sampling noise scale in (0, ``UPPER_TEMPERATURE_MAX``] as a float, or a ValueError naming it."""
  if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 < t <= UPPER_TEMPERATURE_MAX:
    raise ValueError(f"{name}={t!r}: must be a number in (0, {UPPER_TEMPERATURE_MAX:g}] ({meaning})")
  return float(t)


def check_upper_temperature(t, name: str = "hier.upper_temperature") -> float:
  """``hier.upper_temperature`` as a float, or a ValueError naming it (as ``name``) and what is allowed."""
  meaning = "the coarse and top levels' noise scale when sampling; 1: as trained, higher: larger lakes and more water"
  return _noise_scale(name, t, meaning)


def check_top_temperature(t, three_levels: bool, name: str = "hier.top_temperature") -> float:
  """``hier.top_temperature`` as a float (only 1 for a two-level model, which has no top level), or a ValueError
  naming it (as ``name``) and what is allowed."""
  meaning = (
    "a three-level model's top level's noise scale when sampling, on top of hier.upper_temperature; 1: as trained, "
    "higher: larger lakes laid out"
  )
  t = _noise_scale(name, t, meaning)
  if t != 1.0 and not three_levels:
    raise ValueError(f"{name}={t!r}: for three-level models only (hier.top_factor > 0); this one has two levels")
  return t


def fine_steps(hier_cfg) -> int:
  """Steps on which both levels train (``hier.fine_steps``; 0, the default, for every step)."""
  n = hier_cfg.get("fine_steps", 0)
  if not isinstance(n, int) or isinstance(n, bool) or n < 0:
    raise ValueError(f"hier.fine_steps={n!r}: must be an integer >= 0 (0: both levels train in every step)")
  return n


def top_factor(hier_cfg) -> int:
  """``hier.top_factor``: 0 (two levels) or a third level's factor (older configs have none: 0)."""
  return hier_cfg.get("top_factor", 0)


def restart_at(config) -> int:
  """Where the optimiser's schedule starts again: at ``hier.fine_steps``, if the coarse level trains on alone."""
  return fine_steps(config.hier)  # optim.make: none where it is 0 or >= train.num_steps


def check_resolutions(key: str, widths, image_size: int) -> None:
  """``hier.{key}``'s U-Net halves ``image_size`` once between entries and must keep at least 2 px."""
  n = len(widths)
  if image_size % 2 ** (n - 1) or image_size // 2 ** (n - 1) < 2:
    raise ValueError(f"hier.{key} has {n} resolutions: too many for data.image_size={image_size}")


def validate(fm_cfg, hier_cfg, data: base.DataSpec) -> None:
  fm.validate(fm_cfg, data)
  coarse_data.check_factor(hier_cfg.factor, data.image_size)
  if fm_cfg.attention:
    raise ValueError("fm.attention=True: the fine level renders large scenes by windows; train it without attention")
  cw = tuple(hier_cfg.coarse_widths)
  if not cw or any(not isinstance(w, int) or w < 1 for w in cw):
    raise ValueError(f"hier.coarse_widths={cw!r}: must be positive integers, finest resolution first")
  check_resolutions("coarse_widths", cw, data.image_size)
  tw = hier_cfg.get("top_widths", ())
  if not isinstance(tw, (tuple, list)) or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in tw):
    raise ValueError(f"hier.top_widths={tw!r}: must be () (hier.coarse_widths) or positive integers, finest first")
  if tw and not hier_cfg.get("top_factor", 0):
    raise ValueError(f"hier.top_widths={tuple(tw)!r}: for three-level models (hier.top_factor > 0); () for two")
  if tw:
    check_resolutions("top_widths", tw, data.image_size)
  if not 0.0 <= hier_cfg.cond_noise <= 1.0:
    raise ValueError(f"hier.cond_noise={hier_cfg.cond_noise!r}: must be in [0, 1]")
  bn = hier_cfg.get("cond_noise_blocks", 0.0)
  if isinstance(bn, bool) or not isinstance(bn, (int, float)) or not 0.0 <= bn <= 1.0:
    raise ValueError(
      f"hier.cond_noise_blocks={bn!r}: must be a number in [0, 1] (noise per coarse pixel on the map a level is "
      "conditioned on in training; 0: none)"
    )
  fine_steps(hier_cfg)
  coarse_data.check_share_power(hier_cfg.get("share_power", 1.0))
  check_fine_temperature(hier_cfg.get("fine_temperature", 1.0))
  check_upper_temperature(hier_cfg.get("upper_temperature", 1.0))
  tf = top_factor(hier_cfg)
  check_top_temperature(hier_cfg.get("top_temperature", 1.0), bool(tf))
  if tf:
    coarse_data.check_top_factor(tf, hier_cfg.factor, data.image_size)
  coarse_data.check_coarse_window(hier_cfg.get("coarse_window", 0), data.image_size, tf, hier_cfg.factor, len(cw))
  river_field.check_share(hier_cfg.get("river_share", 0.5))
  river_field.check_min_blocks(hier_cfg.get("min_water_blocks", 0))
  field = hier_cfg.get("coarse_field", "")
  if field != "" and (not isinstance(field, str) or data.one_hot[0] == data.one_hot[1]):
    raise ValueError(f"hier.coarse_field={field!r}: a label class, for models with label channels; '' for none")
  trace = hier_cfg.get("top_trace", "")
  if trace != "" and (not tf or data.one_hot[0] == data.one_hot[1]):
    raise ValueError(
      f"hier.top_trace={trace!r}: for three-level models (hier.top_factor > 0) with label channels; '' for none"
    )


def make_kwargs(config) -> dict:
  """``make``'s ``trace_class``, ``field_class`` and ``prune_class``: ``hier.top_trace``'s and
  ``hier.coarse_field``'s indices among the world's label classes, and its ``water`` class's where
  ``hier.min_water_blocks`` prunes (none where unset)."""
  trace, field = config.hier.get("top_trace", ""), config.hier.get("coarse_field", "")
  prune = river_field.check_min_blocks(config.hier.get("min_water_blocks", 0)) > 1
  if trace == "" and field == "" and not prune:
    return {}
  from genenv_jax.scenes import get_world

  names = get_world(config.data.world).class_names
  out = {}
  if prune:
    out["prune_class"] = river_field.check_prune_class(names, "labels" in config.data.channels)
  if trace != "":
    out["trace_class"] = coarse_data.check_top_trace(trace, top_factor(config.hier), names)
  if field != "":
    out["field_class"] = coarse_data.check_coarse_field(field, names)
  return out


def condition(key, x, r, one_hot, power: float, noise: float, block_noise: float = 0.0, traced=None):
  """The map a level is conditioned on in training: ``x`` pooled by ``r`` (``data.coarse.pool``; with ``traced``,
  ``(k, factor)`` of ``hier.top_trace``, the top map with its trace channel: ``data.coarse.top_map``), repeated up,
  with Gaussian noise ``noise`` per pixel (``hier.cond_noise``) and ``block_noise`` per coarse pixel, before
  repeating up (``hier.cond_noise_blocks``): a drawn map's errors are blockwise, as in cascaded diffusion's
  conditioning augmentation. ``block_noise`` 0 draws nothing more (the key's per-pixel noise is the same)."""
  c = coarse_data.top_map(x, r, one_hot, power, traced)
  if block_noise:
    c = c + block_noise * jax.random.normal(jax.random.fold_in(key, 1), c.shape)
  cond = coarse_data.upsample(c, r)
  return cond + noise * jax.random.normal(key, cond.shape)


def make(
  fm_cfg,
  hier_cfg,
  txs: dict,
  data: base.DataSpec,
  trace_class: int | None = None,
  field_class: int | None = None,
  prune_class: int | None = None,
) -> base.Family:
  """Builds the two-level family from the ``fm`` (fine level, solver) and ``hier`` sections.

  ``trace_class``, ``field_class``, ``prune_class``: ``hier.top_trace``'s and ``hier.coarse_field``'s indices
  among the label classes and the ``water`` class's (``hier.min_water_blocks``; the caller reads them from the
  world's class names, which ``DataSpec`` does not hold); needed where those keys are set."""
  f, h = fm_cfg, hier_cfg
  validate(f, h, data)
  nc, C, S, factor = data.num_classes, data.channels, data.image_size, h.factor
  one_hot = tuple(data.one_hot)
  tf = top_factor(h)
  ratio = tf // factor  # top pixels per coarse pixel's block (0: no top level)
  if h.get("top_trace", "") != "" and trace_class is None:
    raise ValueError(f"hier.top_trace={h.top_trace!r}: the class's index is needed (flow_matching_hier.make)")
  traced = None if h.get("top_trace", "") == "" else (trace_class, factor)  # older configs have none
  if h.get("coarse_field", "") != "" and field_class is None:
    raise ValueError(f"hier.coarse_field={h.coarse_field!r}: the class's index is needed (flow_matching_hier.make)")
  field = None if h.get("coarse_field", "") == "" else field_class  # older configs have none
  if river_field.check_min_blocks(h.get("min_water_blocks", 0)) > 1 and prune_class is None:
    raise ValueError(
      f"hier.min_water_blocks={h.min_water_blocks!r}: the water class's index is needed (flow_matching_hier.make)"
    )
  CT = C + (traced is not None)  # the top map's channels
  CC = C + (field is not None)  # the channels the coarse level draws
  CW = coarse_data.coarse_window(h, S)  # the coarse level's maps and windows (hier.coarse_window)
  fine_net = unet.UNet(C, tuple(f.widths), f.blocks, False, nc)
  coarse_net = unet.UNet(CC, tuple(h.coarse_widths), f.blocks, False, nc)
  top_widths = tuple(h.get("top_widths", ())) or tuple(h.coarse_widths)  # older configs have none: the same
  top_net = unet.UNet(CT, top_widths, f.blocks, False, nc) if tf else None
  tx = txs["fm"]
  ema_decay, time_sampling, cond_noise = f.ema_decay, f.time_sampling, float(h.cond_noise)
  block_noise = float(h.get("cond_noise_blocks", 0.0))  # older configs have none
  default_solver, default_steps = f.solver, f.sample_steps
  joint_steps = fine_steps(h)

  power = float(h.get("share_power", 1.0))  # older configs have none: plain block means
  fine_t = float(h.get("fine_temperature", 1.0))  # sampling only; older configs have none
  upper_t = float(h.get("upper_temperature", 1.0))  # sampling only; older configs have none
  top_t = float(h.get("top_temperature", 1.0))  # sampling only; older configs have none
  river_share = float(h.get("river_share", 0.5))  # sampling only (a river field's crossings); older: none
  min_blocks = int(h.get("min_water_blocks", 0))  # sampling only (small coarse water pieces pruned); older: none

  def fine_velocity(params, cond, label):
    return lambda x, t: fine_net.apply(params["fine"], jnp.concatenate([x, cond], -1), t, label)

  def coarse_velocity(params, label, cond=None):
    if tf:  # conditioned on the top map under the window
      return lambda x, t: coarse_net.apply(params["coarse"], jnp.concatenate([x, cond], -1), t, label)
    return lambda x, t: coarse_net.apply(params["coarse"], x, t, label)

  def top_velocity(params, label):
    return lambda x, t: top_net.apply(params["top"], x, t, label)

  def noisy_cond(key, x, r, traced=None):
    return condition(key, x, r, one_hot, power, cond_noise, block_noise, traced)

  def coarse_losses(params, key, batch):
    """{'coarse_loss'} (and 'top_loss' with a top level): the levels above the fine one."""
    xc, label = batch["x_coarse"], batch["label"]
    if not tf:  # the two-level key, as before there was a top level
      return {"coarse_loss": fm.cfm_loss(coarse_velocity(params, label), key, xc, time_sampling)}
    kc, kn, kt = jax.random.split(key, 3)
    cond = noisy_cond(kn, xc[..., :C], ratio, traced)  # the map's C channels (not a river field's)
    lc = fm.cfm_loss(coarse_velocity(params, label, cond), kc, xc, time_sampling)
    return {"coarse_loss": lc, "top_loss": fm.cfm_loss(top_velocity(params, label), kt, batch["x_top"], time_sampling)}

  def losses(params, key, batch):
    kf, kc, kn = jax.random.split(key, 3)
    x, label = batch["x"], batch["label"]
    out = {"loss": fm.cfm_loss(fine_velocity(params, noisy_cond(kn, x, factor), label), kf, x, time_sampling)}
    return {**out, **coarse_losses(params, kc, batch)}

  def loss_fn(params, key, batch):
    ls = losses(params, key, batch)
    return sum(ls.values()), ls

  def init(key, batch):
    # Four keys: with JAX's partitionable threefry (the default) the first three are split(key, 3)'s, the
    # two-level keys from before the top level (tests/test_hier3.py checks), and the fourth seeded the
    # measured three-level run.
    kp, kc, kr, kt = jax.random.split(key, 4)
    x = batch["x"]
    n = x.shape[0]
    xt = jnp.zeros(x.shape[:-1] + (CT,), x.dtype)  # a top map's shape
    xc = jnp.zeros(x.shape[:-1] + (CC,), x.dtype)  # a coarse map's
    params = {
      "fine": fine_net.init(kp, jnp.concatenate([x, x], -1), jnp.zeros((n,)), batch["label"]),
      "coarse": coarse_net.init(kc, jnp.concatenate([xc, xt], -1) if tf else xc, jnp.zeros((n,)), batch["label"]),
    }
    if tf:
      params["top"] = top_net.init(kt, xt, jnp.zeros((n,)), batch["label"])
    return base.initial_state(params, tx.init(params), params, kr)

  def both_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    (loss, ls), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, key, batch)
    kept = base.optimizer_step(state, tx, loss, grads, ema_decay)
    return kept, {**ls, "grad_norm": optax.tree.norm(grads), "skipped": kept.skipped}

  def coarse_step(state, batch):
    """The levels above the fine one alone: the fine level's parameters, and their EMA, stay as they are."""
    key = jax.random.fold_in(state.rng, state.step)
    kc = jax.random.split(key, 3)[1]  # the coarse levels' key of ``losses``
    p = state.params
    upper = {k: v for k, v in p.items() if k != "fine"}

    def upper_loss(u):
      ls = coarse_losses({**p, **u}, kc, batch)
      return sum(ls.values()), ls

    (_, ls), gu = jax.value_and_grad(upper_loss, has_aux=True)(upper)
    grads = {**jax.tree.map(jnp.zeros_like, p), **gu}
    upd, opt_state = tx.update(grads, state.opt_state, p)
    params = {**optax.apply_updates(p, upd), "fine": p["fine"]}
    ok = jnp.all(jnp.array([jnp.isfinite(v) for v in ls.values()])) & base.tree_all_finite(gu)
    kept = base.finish_step(state, params, opt_state, params, ok, ema_decay)
    kept = kept._replace(ema_params={**kept.ema_params, "fine": state.ema_params["fine"]})
    return kept, {**ls, "grad_norm": optax.tree.norm(gu), "skipped": kept.skipped}  # no fine 'loss'

  def eval_step(state, batch):
    key = jax.random.fold_in(state.rng, 2**31 - 1)
    return losses(state.ema_params, key, batch)

  def labels_for(key, n, cond):
    if cond is not None:
      return jnp.broadcast_to(jnp.asarray(cond, jnp.int32), (n,))
    return jax.random.randint(key, (n,), 0, nc) if nc > 1 else jnp.zeros((n,), jnp.int32)

  def noise(key, n, channels=C, size=S):
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    return jax.vmap(lambda k: jax.random.normal(k, (size, size, channels)))(keys)

  def clip(x):
    return jnp.clip(jnp.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)

  def coarse_finalize(x):
    """The coarse level's CC channels -> the C-channel map handed down (rivers carved where a field is drawn)."""
    return hier.carve(clip(x))  # ``hier``, below: built from the same keys

  def sample(params, key, n, cond=None, temperature=None, solver=None, steps=None):
    """Sample i depends only on (params, key, i): a coarse window, then the fine window under its centre."""
    solver, steps = solver or default_solver, steps or default_steps
    fm.check_solver(solver, steps)
    temperature = 1.0 if temperature is None else temperature
    kc, kf, kl = jax.random.split(key, 3)
    label = labels_for(kl, n, cond)

    def centre(x, r, size):  # the block of a window that r-times finer pixels see (a size-px window), repeated up
      b = size // r
      a = (x.shape[1] - b) // 2
      return coarse_data.upsample(x[:, a : a + b, a : a + b], r)

    top_cond = None
    if tf:
      kt = jax.random.fold_in(kc, 1)
      xt = clip(fm.solve(top_velocity(params, label), upper_t * top_t * temperature * noise(kt, n, CT), solver, steps))
      top_cond = centre(xt, ratio, CW)
    vc = coarse_velocity(params, label, top_cond)
    xc = hier.prune(coarse_finalize(fm.solve(vc, upper_t * temperature * noise(kc, n, CC, CW), solver, steps)))
    cond_map = centre(xc, factor, S)
    x1 = fm.solve(fine_velocity(params, cond_map, label), fine_t * temperature * noise(kf, n), solver, steps)
    return fm.finalize(x1, one_hot)

  def coarse_canvas_velocity(params, x, t, label):
    if tf:  # the top map rides along with zero velocity
      v = coarse_net.apply(params["coarse"], x, t, label)
      return jnp.concatenate([v, jnp.zeros(v.shape[:-1] + (CT,), v.dtype)], -1)
    return coarse_net.apply(params["coarse"], x, t, label)

  def top_canvas_velocity(params, x, t, label):
    return top_net.apply(params["top"], x, t, label)

  def fine_canvas_velocity(params, x, t, label):
    v = fine_net.apply(params["fine"], x, t, label)
    return jnp.concatenate([v, jnp.zeros_like(v)], -1)

  if tf:
    coarse_cv = base.Canvas(
      coarse_canvas_velocity, CW, CC + CT, False, lambda x: coarse_finalize(x[..., :CC]), f.solver, f.sample_steps
    )
    top_cv = base.Canvas(top_canvas_velocity, S, CT, False, clip, f.solver, f.sample_steps)
  else:
    coarse_cv = base.Canvas(coarse_canvas_velocity, CW, CC, False, coarse_finalize, f.solver, f.sample_steps)
    top_cv = None
  hier = Hier(
    coarse=coarse_cv,
    fine=base.Canvas(
      fine_canvas_velocity, S, 2 * C, False, lambda x: fm.finalize(x[..., :C], one_hot), f.solver, f.sample_steps
    ),
    factor=factor,
    channels=C,
    one_hot=one_hot,
    top=top_cv,
    top_factor=tf,
    traced=traced,
    share_power=power,
    fine_temperature=fine_t,
    upper_temperature=upper_t,
    top_temperature=top_t,
    field=field,
    river_share=river_share,
    prune_class=prune_class,
    min_water_blocks=min_blocks,
  )
  return base.Family(
    init=init,
    train_step=both_step,
    eval_step=eval_step,
    sample=sample,
    roles=ROLES,
    extras={"hier": hier},
    canvas=hier.fine,
    phases=((joint_steps, coarse_step),) if joint_steps else (),
  )
