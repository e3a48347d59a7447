"""Flow-matching family: a velocity field trained on straight paths from noise to data.

* Paths (rectified flow / conditional OT, Lipman et al. 2023, Liu et al. 2023):
  ``x_t = (1 - t) x_0 + t x_1`` with noise ``x_0 ~ N(0, I)`` at t = 0 and a
  scene ``x_1`` at t = 1; the network regresses the path's velocity
  ``x_1 - x_0`` (mean squared error). Times are uniform or logit-normal
  (Esser et al. 2024).
* Samples solve ``dx/dt = v(x, t)`` from noise: Euler, midpoint, Heun
  (fixed steps) or an adaptive Runge-Kutta (diffrax Tsit5). The model tensor
  has the GAN's structured channels; the label channels of the end point are
  snapped to a one-hot argmax, the others clipped to [-1, 1].
* Likelihood: the instantaneous change of variables,
  ``log p_1(x_1) = log N(x_0) - int_0^1 div v(x_t, t) dt``, integrated back from
  the uniformly dequantised data with a midpoint rule; the divergence by
  Hutchinson's estimator (Rademacher probes, one forward-mode product per
  evaluation). Reported as bits/dim of the 8-bit data, so it sits beside
  Glow's and the VAE's numbers (label channels are not 8-bit data: configs with
  'labels' report the held-out flow-matching loss instead).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from genenv_jax.families import base
from genenv_jax.nets import unet

SOLVERS = ("euler", "midpoint", "heun", "adaptive")
TIME_SAMPLING = ("uniform", "logit_normal")
LOG2PI = math.log(2 * math.pi)

VelocityFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x [b, ...], t [b]) -> v [b, ...]


# --- the objective -----------------------------------------------------------


def sample_times(key, n: int, kind: str) -> jax.Array:
  if kind == "logit_normal":
    return jax.nn.sigmoid(jax.random.normal(key, (n,)))
  return jax.random.uniform(key, (n,))


def cfm_loss(velocity: VelocityFn, key, x1: jax.Array, time_sampling: str = "uniform") -> jax.Array:
  """Conditional flow-matching loss on straight paths: mean over the batch and every dimension."""
  kt, k0 = jax.random.split(key)
  t = sample_times(kt, x1.shape[0], time_sampling)
  x0 = jax.random.normal(k0, x1.shape)
  tb = t.reshape(-1, *([1] * (x1.ndim - 1)))
  xt = (1.0 - tb) * x0 + tb * x1
  return jnp.mean((velocity(xt, t) - (x1 - x0)) ** 2)


# --- solving the ODE ---------------------------------------------------------


def nfe(solver: str, steps: int) -> int:
  """Network evaluations per sample of a fixed-step solver."""
  return steps * (1 if solver == "euler" else 2)


def solve(velocity: VelocityFn, x0: jax.Array, solver: str, steps: int, rtol: float = 1e-3, t0=0.0, t1=1.0):
  """Integrates ``dx/dt = velocity(x, t)`` from ``t0`` to ``t1``; returns x at ``t1``.

  Fixed-step solvers take ``steps`` equal steps. ``adaptive`` is diffrax's
  Tsit5 with a PID step-size controller (``rtol``; ``atol = rtol``), run per
  sample (vmapped), so a sample's steps never depend on the rest of the batch.
  """
  n = x0.shape[0]
  if solver == "adaptive":
    import diffrax

    def one(x):
      term = diffrax.ODETerm(lambda t, y, _: velocity(y[None], jnp.full((1,), t))[0])
      sol = diffrax.diffeqsolve(
        term,
        diffrax.Tsit5(),
        t0,
        t1,
        (t1 - t0) / 8,
        x,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol),
        max_steps=4096,
      )
      return sol.ys[-1]

    return jax.vmap(one)(x0)
  dt = (t1 - t0) / steps

  def step(x, i):
    t = t0 + i * dt
    tv = jnp.full((n,), t)
    v1 = velocity(x, tv)
    if solver == "euler":
      return x + dt * v1, None
    if solver == "midpoint":
      return x + dt * velocity(x + 0.5 * dt * v1, tv + 0.5 * dt), None
    v2 = velocity(x + dt * v1, tv + dt)  # heun
    return x + 0.5 * dt * (v1 + v2), None

  x, _ = jax.lax.scan(step, x0, jnp.arange(steps))
  return x


def divergence_hutchinson(velocity: VelocityFn, x, t, probe):
  """(v, div v): one forward-mode product; unbiased for E[probe probe^T] = I."""
  v, jv = jax.jvp(lambda y: velocity(y, t), (x,), (probe,))
  return v, jnp.sum(jv * probe, axis=tuple(range(1, x.ndim)))


def divergence_exact(velocity: VelocityFn, x, t):
  """(v, div v) by the full Jacobian of each sample: for tests on tiny inputs."""

  def one(xi, ti):
    f = lambda y: velocity(y[None], ti[None])[0].reshape(-1)  # noqa: E731
    jac = jax.jacfwd(f)(xi).reshape(xi.size, xi.size)
    return f(xi).reshape(xi.shape), jnp.trace(jac)

  return jax.vmap(one)(x, t)


def log_likelihood(velocity: VelocityFn, x1, key, steps: int, exact: bool = False):
  """[b] log-density of ``x1`` under the ODE's flow of N(0, I), by the midpoint rule back from t=1 to 0.

  ``exact=False`` draws one Rademacher probe per sample, kept for the whole
  path (Grathwohl et al. 2019); ``exact=True`` takes the Jacobian's trace.
  """
  n = x1.shape[0]
  probe = jax.random.rademacher(key, x1.shape, dtype=x1.dtype)
  dt = -1.0 / steps

  def field(x, t):
    tv = jnp.full((n,), t)
    return divergence_exact(velocity, x, tv) if exact else divergence_hutchinson(velocity, x, tv, probe)

  def step(carry, i):
    x, acc = carry
    t = 1.0 + i * dt
    v1, _ = field(x, t)
    v2, div = field(x + 0.5 * dt * v1, t + 0.5 * dt)
    return (x + dt * v2, acc + dt * div), None

  (x0, acc), _ = jax.lax.scan(step, (x1, jnp.zeros((n,))), jnp.arange(steps))
  # d log p_t / dt = -div v  =>  log p_1(x_1) = log p_0(x_0) - int_0^1 div = log p_0(x_0) + int_1^0 div.
  log_p0 = -0.5 * jnp.sum(x0**2 + LOG2PI, axis=tuple(range(1, x0.ndim)))
  return log_p0 + acc


def dequantize(key, x):
  """8-bit values in [-1, 1] -> continuous values in [-1, 1): (v + u) / 128 - 1, u ~ U[0, 1)."""
  v = jnp.round((x + 1.0) * 127.5)
  return (v + jax.random.uniform(key, x.shape)) / 128.0 - 1.0


def bits_per_dim(logp, num_dims: int):
  """Bits/dim of the 8-bit data: a bin of width 2/256 in [-1, 1] has volume (1/128)^D."""
  return (-logp + num_dims * math.log(128.0)) / (num_dims * math.log(2.0))


def finalize(x, one_hot: tuple[int, int]):
  """ODE end point -> model tensor: one-hot argmax on label channels, the rest clipped to [-1, 1]."""
  x = jnp.clip(jnp.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
  a, b = one_hot
  if b > a:
    oh = jax.nn.one_hot(jnp.argmax(x[..., a:b], axis=-1), b - a) * 2.0 - 1.0
    x = jnp.concatenate([x[..., :a], oh, x[..., b:]], axis=-1)
  return x


# --- the family --------------------------------------------------------------


def check_solver(solver, steps) -> None:
  if solver not in SOLVERS:
    raise ValueError(f"fm.solver={solver!r}: must be one of {list(SOLVERS)}")
  if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
    raise ValueError(f"fm.sample_steps={steps!r}: must be a positive integer (steps of the ODE solver)")


def validate(fm_cfg, data: base.DataSpec) -> int:
  """Checks the ``fm`` section before anything compiles; returns the number of downsamplings."""
  widths = tuple(fm_cfg.widths)
  if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
    raise ValueError(f"fm.widths={widths!r}: must be positive integers, finest resolution first")
  levels = len(widths) - 1
  if data.image_size % 2**levels or data.image_size // 2**levels < 2:
    raise ValueError(
      f"fm.widths has {len(widths)} resolutions with data.image_size={data.image_size}: the image size must be "
      f"divisible by 2**{levels} and leave at least 2 pixels"
    )
  if not isinstance(fm_cfg.blocks, int) or fm_cfg.blocks < 1:
    raise ValueError(f"fm.blocks={fm_cfg.blocks!r}: must be a positive integer")
  check_solver(fm_cfg.solver, fm_cfg.sample_steps)
  if fm_cfg.time_sampling not in TIME_SAMPLING:
    raise ValueError(f"fm.time_sampling={fm_cfg.time_sampling!r}: must be one of {list(TIME_SAMPLING)}")
  if not 0.0 <= fm_cfg.ema_decay < 1.0:
    raise ValueError(f"fm.ema_decay={fm_cfg.ema_decay}: must be in [0, 1)")
  if not isinstance(fm_cfg.likelihood_steps, int) or fm_cfg.likelihood_steps < 1:
    raise ValueError(f"fm.likelihood_steps={fm_cfg.likelihood_steps!r}: must be a positive integer")
  return levels


ROLES = base.MetricRoles(shown=("loss",), compare=("loss", "grad_norm"), likelihood={"bpd": "ode"})
OPTIMIZERS = {"fm": "lr"}


def make(fm_cfg, txs: dict, data: base.DataSpec) -> base.Family:
  """Builds the flow-matching family.

  Args:
    fm_cfg: the ``fm`` section (U-Net widths, solver, steps, time sampling, EMA).
    txs: ``{'fm': optax transformation}``, built by the caller.
    data: the data spec (conditional when ``data.num_classes > 1``).
  """
  f = fm_cfg
  validate(f, data)
  nc = data.num_classes
  net = unet.UNet(data.channels, tuple(f.widths), f.blocks, f.attention, nc)
  tx = txs["fm"]
  one_hot = tuple(data.one_hot)
  has_labels = one_hot[1] > one_hot[0]
  num_dims = data.image_size * data.image_size * data.channels
  ema_decay, time_sampling = f.ema_decay, f.time_sampling
  default_solver, default_steps, lik_steps = f.solver, f.sample_steps, f.likelihood_steps

  def velocity_of(params, label):
    return lambda x, t: net.apply(params, x, t, label)

  def labels_for(key, n, cond):
    if cond is not None:
      return jnp.broadcast_to(jnp.asarray(cond, jnp.int32), (n,))
    return jax.random.randint(key, (n,), 0, nc) if nc > 1 else jnp.zeros((n,), jnp.int32)

  def loss_fn(params, key, x, label):
    return cfm_loss(velocity_of(params, label), key, x, time_sampling)

  def init(key, batch):
    kp, kr = jax.random.split(key)
    n = batch["x"].shape[0]
    params = net.init(kp, batch["x"], jnp.zeros((n,)), batch["label"])
    return base.initial_state(params, tx.init(params), params, kr)

  def train_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    loss, grads = jax.value_and_grad(loss_fn)(state.params, key, batch["x"], batch["label"])
    kept = base.optimizer_step(state, tx, loss, grads, ema_decay)
    return kept, {"loss": loss, "grad_norm": optax.tree.norm(grads), "skipped": kept.skipped}

  def eval_step(state, batch):
    """Held-out loss; and test bits/dim through the ODE when every channel is 8-bit data."""
    key = jax.random.fold_in(state.rng, 2**31 - 1)
    kl, kd, kp = jax.random.split(key, 3)
    x, label = batch["x"], batch["label"]
    out = {"loss": loss_fn(state.ema_params, kl, x, label)}
    if not has_labels:
      logp = log_likelihood(velocity_of(state.ema_params, label), dequantize(kd, x), kp, lik_steps)
      out["bpd"] = jnp.mean(bits_per_dim(logp, num_dims))
    return out

  def noise(key, n):
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    shape = (data.image_size, data.image_size, data.channels)
    return jax.vmap(lambda k: jax.random.normal(k, shape))(keys)

  def sample(params, key, n, cond=None, temperature=None, solver=None, steps=None):
    """Sample i depends only on (params, key, i): its noise is ``fold_in(key, i)``.

    ``temperature`` scales the initial noise (default 1); ``solver`` and
    ``steps`` default to ``fm.solver`` and ``fm.sample_steps`` (static).
    """
    solver, steps = solver or default_solver, steps or default_steps
    check_solver(solver, steps)
    temperature = 1.0 if temperature is None else temperature
    kz, kl = jax.random.split(key)
    x0 = temperature * noise(kz, n)
    x1 = solve(velocity_of(params, labels_for(kl, n, cond)), x0, solver, steps)
    return finalize(x1, one_hot)

  def velocity(params, x, t, label):
    """The network: (x [b, h, w, C], t [b], label [b]) -> [b, h, w, C] (for large canvases and tools)."""
    return net.apply(params, x, t, label)

  roles = ROLES if not has_labels else ROLES._replace(likelihood={})
  return base.Family(
    init=init,
    train_step=train_step,
    eval_step=eval_step,
    sample=sample,
    roles=roles,
    extras={"velocity": velocity},
    canvas=base.Canvas(
      velocity,
      data.image_size,
      data.channels,
      bool(f.attention),
      lambda x: finalize(x, one_hot),
      f.solver,
      f.sample_steps,
    ),
  )
