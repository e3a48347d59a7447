"""Flow family: a Glow-style multi-scale normalizing flow (Kingma & Dhariwal 2018).

Each level: squeeze, then K steps of (actnorm, invertible 1x1 convolution in
LU form, affine coupling), then a split whose half is modelled by a learned
conditional Gaussian prior. Every layer has ``forward`` and ``inverse``, both
returning ``(y, logdet)`` with ``logdet_inverse = -logdet_forward``. Data are
8-bit channels, uniformly dequantised; bits/dim is exact for the
dequantised density:
``bpd = (-log p(y) + D log 256) / (D log 2)`` with ``y = (v + u) / 256 - 1/2``.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genenv_jax.families import base
from genenv_jax.nets import blocks

LOG2PI = math.log(2 * math.pi)


def squeeze(x):
  """[b, h, w, c] -> [b, h/2, w/2, 4c] (space-to-depth; volume preserving)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x):
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c // 4)


def gaussian_logpdf(z, mean, logstd):
  """Sum over all but the batch axis of log N(z; mean, exp(logstd)^2)."""
  lp = -0.5 * (LOG2PI + 2 * logstd + ((z - mean) * jnp.exp(-logstd)) ** 2)
  return jnp.sum(lp, axis=tuple(range(1, z.ndim)))


class ActNorm(nn.Module):
  """Per-channel affine map; data-dependent init gives zero mean, unit variance."""

  @nn.compact
  def __call__(self, x, reverse: bool = False):
    c = x.shape[-1]
    bias = self.param("bias", lambda rng, s: -jnp.mean(x, axis=(0, 1, 2)), (c,))
    logs = self.param("logs", lambda rng, s: -jnp.log(jnp.std(x, axis=(0, 1, 2)) + 1e-6), (c,))
    ld = x.shape[1] * x.shape[2] * jnp.sum(logs) * jnp.ones((x.shape[0],))
    if not reverse:
      return (x + bias) * jnp.exp(logs), ld
    return x * jnp.exp(-logs) - bias, -ld


class InvConv1x1(nn.Module):
  """Invertible 1x1 convolution, W = P L (U + diag(exp(logs))).

  P is a fixed channel reversal (W starts as a permutation, as RealNVP's
  reverse); L unit lower and U strictly upper triangular are learned, so
  log|det W| = sum(logs) costs nothing.
  """

  @nn.compact
  def __call__(self, x, reverse: bool = False):
    c = x.shape[-1]
    lower = self.param("lower", nn.initializers.zeros, (c, c))
    upper = self.param("upper", nn.initializers.zeros, (c, c))
    logs = self.param("logs", nn.initializers.zeros, (c,))
    perm = jnp.asarray(np.eye(c, dtype=np.float32)[::-1])
    l_mat = jnp.tril(lower, -1) + jnp.eye(c)
    u_mat = jnp.triu(upper, 1) + jnp.diag(jnp.exp(logs))
    w = perm @ l_mat @ u_mat
    ld = x.shape[1] * x.shape[2] * jnp.sum(logs) * jnp.ones((x.shape[0],))
    if not reverse:
      return jnp.einsum("bhwc,dc->bhwd", x, w), ld
    w_inv = jnp.linalg.inv(w)
    return jnp.einsum("bhwc,dc->bhwd", x, w_inv), -ld


class Coupling(nn.Module):
  """Affine coupling: x_b -> (x_b + shift(x_a)) * sigmoid(raw(x_a) + 2)."""

  hidden: int
  conv1x1_as_dot: bool = False  # flow.conv1x1_as_dot: the 1x1 hidden layer as a matrix product (same params)

  @nn.compact
  def __call__(self, x, reverse: bool = False):
    ca = x.shape[-1] // 2
    xa, xb = x[..., :ca], x[..., ca:]
    h = nn.relu(nn.Conv(self.hidden, (3, 3))(xa))
    pointwise = blocks.conv_or_dot if self.conv1x1_as_dot else jax.lax.conv_general_dilated
    h = nn.relu(nn.Conv(self.hidden, (1, 1), conv_general_dilated=pointwise)(h))
    h = nn.Conv(2 * xb.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)
    shift, raw = h[..., 0::2], h[..., 1::2]
    scale = jax.nn.sigmoid(raw + 2.0)
    ld = jnp.sum(jnp.log(scale), axis=(1, 2, 3))
    if not reverse:
      return jnp.concatenate([xa, (xb + shift) * scale], -1), ld
    return jnp.concatenate([xa, xb / scale - shift], -1), -ld


class FlowStep(nn.Module):
  hidden: int
  conv1x1_as_dot: bool = False

  def setup(self):
    self.layers = [ActNorm(), InvConv1x1(), Coupling(self.hidden, self.conv1x1_as_dot)]

  def __call__(self, x, reverse: bool = False):
    total = jnp.zeros((x.shape[0],))
    for layer in self.layers[:: -1 if reverse else 1]:
      x, ld = layer(x, reverse)
      total = total + ld
    return x, total


class SplitPrior(nn.Module):
  """Learned conditional Gaussian for the split-off half, from the kept half."""

  channels: int

  @nn.compact
  def __call__(self, h):
    out = nn.Conv(2 * self.channels, (3, 3), kernel_init=nn.initializers.zeros)(h)
    return out[..., 0::2], out[..., 1::2]


class Glow(nn.Module):
  """Multi-scale flow over [b, s, s, c] inputs in [-1/2, 1/2]."""

  image_size: int
  channels: int
  levels: int
  steps: int
  hidden: int
  conv1x1_as_dot: bool = False

  def setup(self):
    self.flow_steps = [
      [FlowStep(self.hidden, self.conv1x1_as_dot) for _ in range(self.steps)] for _ in range(self.levels)
    ]
    self.priors = [SplitPrior(self.kept_channels(l)) for l in range(self.levels - 1)]

  def kept_channels(self, level: int) -> int:
    """Channels kept (= split off) after the split of ``level``."""
    return self.channels * 2 ** (level + 1)

  def top_shape(self):
    s = self.image_size // 2**self.levels
    return (s, s, self.channels * 2 ** (self.levels + 1))

  def encode(self, x):
    """x -> (eps_top, [eps per split], logdet): the whole flow as one bijection to N(0, I).

    Split halves are standardised by their learned prior, so the map ends in
    standard normal noise and ``logdet`` includes the priors' ``-logstd``.
    """
    ld = jnp.zeros((x.shape[0],))
    h, eps = x, []
    for lvl in range(self.levels):
      h = squeeze(h)
      for step in self.flow_steps[lvl]:
        h, d = step(h)
        ld = ld + d
      if lvl < self.levels - 1:
        c = h.shape[-1] // 2
        h, z = h[..., :c], h[..., c:]
        mean, logstd = self.priors[lvl](h)
        eps.append((z - mean) * jnp.exp(-logstd))
        ld = ld - jnp.sum(logstd, axis=(1, 2, 3))
    return h, eps, ld

  def log_prob(self, x):
    """log p(x) for [b, s, s, c] x (continuous density); returns [b]."""
    top, eps, ld = self.encode(x)
    return gaussian_logpdf(top, 0.0, 0.0) + sum(gaussian_logpdf(e, 0.0, 0.0) for e in eps) + ld

  def sample(self, eps_top, eps_splits, temperature):
    """Inverse map from standard normal noise: eps_top [n, *top_shape], one eps per split."""
    h = temperature * eps_top
    for lvl in reversed(range(self.levels)):
      if lvl < self.levels - 1:
        mean, logstd = self.priors[lvl](h)
        z = mean + temperature * jnp.exp(logstd) * eps_splits[lvl]
        h = jnp.concatenate([h, z], -1)
      for step in reversed(self.flow_steps[lvl]):
        h, _ = step(h, reverse=True)
      h = unsqueeze(h)
    return h

  def __call__(self, x):
    return self.log_prob(x)


def dequantize(key, x):
  """Model tensor in [-1, 1] from 8-bit values -> y = (v + u)/256 - 1/2, u ~ U[0, 1)."""
  v = jnp.round((x + 1.0) * 127.5)
  return (v + jax.random.uniform(key, x.shape)) / 256.0 - 0.5


def bits_per_dim(logp, num_dims: int):
  """Bits per dimension of the 8-bit data from the dequantised log-density."""
  return (-logp + num_dims * math.log(256.0)) / (num_dims * math.log(2.0))


def validate(flow_cfg, data: base.DataSpec) -> None:
  if data.one_hot[1] > data.one_hot[0]:
    raise ValueError("data.channels includes 'labels': the flow models 8-bit channels only ('rgb', 'height')")
  if flow_cfg.levels < 1 or data.image_size % 2**flow_cfg.levels:
    raise ValueError(
      f"flow.levels={flow_cfg.levels} with data.image_size={data.image_size}: the image size must be "
      f"divisible by 2**levels"
    )
  if flow_cfg.steps < 1 or flow_cfg.hidden < 1:
    raise ValueError(f"flow.steps={flow_cfg.steps}, flow.hidden={flow_cfg.hidden}: both must be >= 1")
  as_dot = flow_cfg.get("conv1x1_as_dot", False)
  if not isinstance(as_dot, bool):
    raise ValueError(f"flow.conv1x1_as_dot={as_dot!r}: must be True or False")


ROLES = base.MetricRoles(shown=("bpd",), compare=("bpd", "grad_norm"), likelihood={"bpd": "exact"})
OPTIMIZERS = {"flow": "lr"}


def make(flow_cfg, txs: dict, data: base.DataSpec) -> base.Family:
  """Builds the flow family.

  Args:
    flow_cfg: the ``flow`` section (levels, steps, width, EMA, sampling temperature).
    txs: ``{'flow': optax transformation}``, built by the caller.
    data: the data spec.
  """
  f_cfg = flow_cfg
  validate(f_cfg, data)
  as_dot = f_cfg.get("conv1x1_as_dot", False)
  model = Glow(data.image_size, data.channels, f_cfg.levels, f_cfg.steps, f_cfg.hidden, as_dot)
  tx = txs["flow"]
  num_dims = data.image_size * data.image_size * data.channels
  ema_decay = f_cfg.ema_decay
  default_temperature = f_cfg.get("sample_temperature", 1.0)

  def loss_fn(params, key, x):
    logp = model.apply(params, dequantize(key, x), method=Glow.log_prob)
    return jnp.mean(bits_per_dim(logp, num_dims))

  def init(key, batch):
    kp, kd, kr = jax.random.split(key, 3)
    params = model.init(kp, dequantize(kd, batch["x"]), method=Glow.log_prob)  # data-dependent actnorm
    return base.initial_state(params, tx.init(params), params, kr)

  def train_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    bpd, grads = jax.value_and_grad(loss_fn)(state.params, key, batch["x"])
    kept = base.optimizer_step(state, tx, bpd, grads, ema_decay)
    return kept, {"bpd": bpd, "grad_norm": optax.tree.norm(grads), "skipped": kept.skipped}

  def eval_step(state, batch):
    key = jax.random.fold_in(state.rng, 2**31 - 1)
    return {"bpd": loss_fn(state.ema_params, key, batch["x"])}

  def noise(key, n):
    s, levels = data.image_size, f_cfg.levels
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    top = (s // 2**levels, s // 2**levels, data.channels * 2 ** (levels + 1))
    splits = [(s // 2 ** (lv + 1), s // 2 ** (lv + 1), data.channels * 2 ** (lv + 1)) for lv in range(levels - 1)]

    def one(k):
      ks = jax.random.split(k, levels)
      return jax.random.normal(ks[0], top), [jax.random.normal(ks[i + 1], sh) for i, sh in enumerate(splits)]

    return jax.vmap(one)(keys)

  def sample(params, key, n, cond=None, temperature=None):
    """Sample i depends only on (params, key, i).

    ``temperature`` scales the noise (default ``flow.sample_temperature``;
    Glow samples at 0.7). The inverse of an undertrained coupling can
    overflow at high temperature: such values are clipped to the data range.
    """
    del cond
    t = default_temperature if temperature is None else temperature
    top, splits = noise(key, n)
    y = model.apply(params, top, splits, t, method=Glow.sample)
    return jnp.clip(jnp.nan_to_num(2.0 * y, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)

  return base.Family(
    init=init,
    train_step=train_step,
    eval_step=eval_step,
    sample=sample,
    roles=ROLES,
    sample_temperature=default_temperature,
  )
