"""Two-level flow matching: a coarse map of the world, then the detail under it.

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

from genenv_jax.data import coarse as coarse_data
from genenv_jax.families import base
from genenv_jax.families import flow_matching as fm
from genenv_jax.nets import unet

ROLES = base.MetricRoles(shown=("loss", "coarse_loss"), compare=("loss", "coarse_loss", "grad_norm"))
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
  """

  coarse: base.Canvas
  fine: base.Canvas
  factor: int
  channels: int
  one_hot: tuple[int, int]


def fine_steps(hier_cfg) -> int:
  """Steps on which both levels train (``hier.fine_steps``; 0, the default, for every step)."""
  n = hier_cfg.get("fine_steps", 0)
  if not isinstance(n, int) or isinstance(n, bool) or n < 0:
    raise ValueError(f"hier.fine_steps={n!r}: must be an integer >= 0 (0: both levels train in every step)")
  return n


def restart_at(config) -> int:
  """Where the optimiser's schedule starts again: at ``hier.fine_steps``, if the coarse level trains on alone."""
  return fine_steps(config.hier)  # optim.make: none where it is 0 or >= train.num_steps


def validate(fm_cfg, hier_cfg, data: base.DataSpec) -> None:
  fm.validate(fm_cfg, data)
  coarse_data.check_factor(hier_cfg.factor, data.image_size)
  if fm_cfg.attention:
    raise ValueError("fm.attention=True: the fine level renders large scenes by windows; train it without attention")
  cw = tuple(hier_cfg.coarse_widths)
  if not cw or any(not isinstance(w, int) or w < 1 for w in cw):
    raise ValueError(f"hier.coarse_widths={cw!r}: must be positive integers, finest resolution first")
  if data.image_size % 2 ** (len(cw) - 1) or data.image_size // 2 ** (len(cw) - 1) < 2:
    raise ValueError(f"hier.coarse_widths has {len(cw)} resolutions: too many for data.image_size={data.image_size}")
  if not 0.0 <= hier_cfg.cond_noise <= 1.0:
    raise ValueError(f"hier.cond_noise={hier_cfg.cond_noise!r}: must be in [0, 1]")
  fine_steps(hier_cfg)


def make(fm_cfg, hier_cfg, txs: dict, data: base.DataSpec) -> base.Family:
  """Builds the two-level family from the ``fm`` (fine level, solver) and ``hier`` sections."""
  f, h = fm_cfg, hier_cfg
  validate(f, h, data)
  nc, C, S, factor = data.num_classes, data.channels, data.image_size, h.factor
  one_hot = tuple(data.one_hot)
  fine_net = unet.UNet(C, tuple(f.widths), f.blocks, False, nc)
  coarse_net = unet.UNet(C, tuple(h.coarse_widths), f.blocks, False, nc)
  tx = txs["fm"]
  ema_decay, time_sampling, cond_noise = f.ema_decay, f.time_sampling, float(h.cond_noise)
  default_solver, default_steps = f.solver, f.sample_steps
  joint_steps = fine_steps(h)

  def cond_of(x):
    return coarse_data.upsample(coarse_data.downsample(x, factor), factor)

  def fine_velocity(params, cond, label):
    return lambda x, t: fine_net.apply(params["fine"], jnp.concatenate([x, cond], -1), t, label)

  def coarse_velocity(params, label):
    return lambda x, t: coarse_net.apply(params["coarse"], x, t, label)

  def losses(params, key, x, xc, label):
    kf, kc, kn = jax.random.split(key, 3)
    cond = cond_of(x)
    cond = cond + cond_noise * jax.random.normal(kn, cond.shape)
    lf = fm.cfm_loss(fine_velocity(params, cond, label), kf, x, time_sampling)
    lc = fm.cfm_loss(coarse_velocity(params, label), kc, xc, time_sampling)
    return lf, lc

  def loss_fn(params, key, x, xc, label):
    lf, lc = losses(params, key, x, xc, label)
    return lf + lc, (lf, lc)

  def init(key, batch):
    kp, kc, kr = jax.random.split(key, 3)
    x = batch["x"]
    n = x.shape[0]
    params = {
      "fine": fine_net.init(kp, jnp.concatenate([x, x], -1), jnp.zeros((n,)), batch["label"]),
      "coarse": coarse_net.init(kc, x, jnp.zeros((n,)), batch["label"]),
    }
    return base.initial_state(params, tx.init(params), params, kr)

  def both_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    (loss, (lf, lc)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, key, batch["x"], batch["x_coarse"], batch["label"]
    )
    kept = base.optimizer_step(state, tx, loss, grads, ema_decay)
    return kept, {"loss": lf, "coarse_loss": lc, "grad_norm": optax.tree.norm(grads), "skipped": kept.skipped}

  def coarse_step(state, batch):
    """The coarse level alone: the fine level's parameters, and their EMA, stay as they are."""
    key = jax.random.fold_in(state.rng, state.step)
    kc = jax.random.split(key, 3)[1]  # the coarse level's key of ``losses``
    p = state.params

    def coarse_loss(cp):
      return fm.cfm_loss(coarse_velocity({**p, "coarse": cp}, batch["label"]), kc, batch["x_coarse"], time_sampling)

    lc, gc = jax.value_and_grad(coarse_loss)(p["coarse"])
    grads = {**jax.tree.map(jnp.zeros_like, p), "coarse": gc}
    upd, opt_state = tx.update(grads, state.opt_state, p)
    params = {**optax.apply_updates(p, upd), "fine": p["fine"]}
    ok = jnp.isfinite(lc) & base.tree_all_finite(gc)
    kept = base.finish_step(state, params, opt_state, params, ok, ema_decay)
    kept = kept._replace(ema_params={**kept.ema_params, "fine": state.ema_params["fine"]})
    return kept, {"coarse_loss": lc, "grad_norm": optax.tree.norm(gc), "skipped": kept.skipped}  # no fine 'loss'

  def eval_step(state, batch):
    key = jax.random.fold_in(state.rng, 2**31 - 1)
    lf, lc = losses(state.ema_params, key, batch["x"], batch["x_coarse"], batch["label"])
    return {"loss": lf, "coarse_loss": lc}

  def labels_for(key, n, cond):
    if cond is not None:
      return jnp.broadcast_to(jnp.asarray(cond, jnp.int32), (n,))
    return jax.random.randint(key, (n,), 0, nc) if nc > 1 else jnp.zeros((n,), jnp.int32)

  def noise(key, n):
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    return jax.vmap(lambda k: jax.random.normal(k, (S, S, C)))(keys)

  def coarse_finalize(x):
    return jnp.clip(jnp.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)

  def sample(params, key, n, cond=None, temperature=None, solver=None, steps=None):
    """Sample i depends only on (params, key, i): a coarse window, then the fine window under its centre."""
    solver, steps = solver or default_solver, steps or default_steps
    fm.check_solver(solver, steps)
    temperature = 1.0 if temperature is None else temperature
    kc, kf, kl = jax.random.split(key, 3)
    label = labels_for(kl, n, cond)
    xc = coarse_finalize(fm.solve(coarse_velocity(params, label), temperature * noise(kc, n), solver, steps))
    b, a = S // factor, (S - S // factor) // 2
    cond_map = coarse_data.upsample(xc[:, a : a + b, a : a + b], factor)
    x1 = fm.solve(fine_velocity(params, cond_map, label), temperature * noise(kf, n), solver, steps)
    return fm.finalize(x1, one_hot)

  def coarse_canvas_velocity(params, x, t, label):
    return coarse_net.apply(params["coarse"], x, t, label)

  def fine_canvas_velocity(params, x, t, label):
    v = fine_net.apply(params["fine"], x, t, label)
    return jnp.concatenate([v, jnp.zeros_like(v)], -1)

  hier = Hier(
    coarse=base.Canvas(coarse_canvas_velocity, S, C, False, coarse_finalize, f.solver, f.sample_steps),
    fine=base.Canvas(
      fine_canvas_velocity, S, 2 * C, False, lambda x: fm.finalize(x[..., :C], one_hot), f.solver, f.sample_steps
    ),
    factor=factor,
    channels=C,
    one_hot=one_hot,
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
