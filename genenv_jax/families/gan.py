"""GAN family: fully convolutional generator on a spatial latent grid.

* Generator: latent grid [b, s/2^k, s/2^k, z] -> k pixel-shuffle upsamplings
  -> tanh. Fully convolutional, so a larger latent grid renders a larger scene.
* Discriminator: residual conv blocks with 2x average pooling down to 4x4,
  a dense head and, when conditional, a projection term (Miyato & Koyama).
* Losses: the non-saturating loss (``ns``, Goodfellow et al.) or ``hinge``;
  R1 gradient penalty on reals; EMA of the generator makes the samples.
* One ``train_step`` updates D then G, each with its own optax optimiser.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from genenv_jax.families import augment, base
from genenv_jax.nets import blocks


def widths(num_levels: int, width: int, max_width: int) -> list[int]:
  """Feature widths from coarse to fine: ``width`` at the finest, doubling per level."""
  return [min(max_width, width * 2 ** (num_levels - i)) for i in range(num_levels + 1)]


def structured_output(h: jax.Array, one_hot: tuple[int, int]) -> jax.Array:
  """tanh everywhere, except a softmax (mapped to [-1, 1]) over one-hot label channels.

  Real label maps are exactly one-hot; a softmax lets the generator reach
  that, where tanh channels would let the discriminator tell fakes apart by
  their inexact values alone.
  """
  a, b = one_hot
  if b <= a:
    return jnp.tanh(h)
  probs = jax.nn.softmax(h[..., a:b], axis=-1)
  return jnp.concatenate([jnp.tanh(h[..., :a]), 2.0 * probs - 1.0, jnp.tanh(h[..., b:])], axis=-1)


def minibatch_stddev(x: jax.Array, group: int) -> jax.Array:
  """Appends the mean feature std over groups of samples (ProGAN/StyleGAN).

  Groups are strided (sample i with i + n/g, ...), so on a batch sharded
  along devices each group spans devices instead of depending on them.
  """
  n = x.shape[0]
  g = min(group, n)
  while n % g:
    g -= 1
  y = x.reshape(g, n // g, *x.shape[1:])
  std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8).mean(axis=(1, 2, 3))  # [n/g]
  feat = jnp.tile(std, g)[:, None, None, None]
  return jnp.concatenate([x, jnp.broadcast_to(feat, (*x.shape[:3], 1))], axis=-1)


class Generator(nn.Module):
  channels: int
  num_up: int
  width: int
  max_width: int
  num_classes: int = 1
  one_hot: tuple[int, int] = (0, 0)
  icnr: bool = False
  upsample: str = "shuffle"
  dtype: jnp.dtype | None = None  # computation dtype (train.precision); parameters and output stay float32
  chunks: int = 1  # model.chunks: the body runs on this many interleaved slices of the batch (blocks.in_chunks)

  @nn.compact
  def __call__(self, z, label=None):
    ws = widths(self.num_up, self.width, self.max_width)
    if self.num_classes > 1:
      emb = nn.Embed(self.num_classes, z.shape[-1])(label)
      z = z + emb[:, None, None, :]
    # Submodules built once, in the order that names their parameters, then applied per slice.
    first = blocks.ConvBlock(ws[0], norm=True, dtype=self.dtype)
    levels = [
      (blocks.Upsample(w, self.icnr, self.upsample, self.dtype), blocks.ConvBlock(w, norm=True, dtype=self.dtype))
      for w in ws[1:]
    ]
    out = nn.Conv(self.channels, (3, 3), dtype=self.dtype)

    def body(z):
      h = first(blocks.pixel_norm(z if self.dtype is None else z.astype(self.dtype)))
      for up, block in levels:
        h = block(blocks.lrelu(up(h)))
      return out(h).astype(jnp.float32)

    return structured_output(blocks.in_chunks(body, z, self.chunks), self.one_hot)


class Discriminator(nn.Module):
  num_down: int
  width: int
  max_width: int
  num_classes: int = 1
  mbstd_group: int = 4
  dtype: jnp.dtype | None = None  # computation dtype (train.precision); parameters and logits stay float32
  chunks: int = 1  # model.chunks: the trunk (up to the minibatch stddev) runs on interleaved slices

  @nn.compact
  def __call__(self, x, label=None):
    ws = widths(self.num_down, self.width, self.max_width)[::-1]  # fine -> coarse
    stem = nn.Conv(ws[0], (3, 3), dtype=self.dtype)
    trunk_blocks = [blocks.ConvBlock(w, dtype=self.dtype) for w in ws[1:]]

    def trunk(x):
      h = blocks.lrelu(stem(x))
      for block in trunk_blocks:
        h = blocks.avg_pool2(block(h))
      return h

    h = blocks.in_chunks(trunk, x, self.chunks)
    if self.mbstd_group > 1:
      h = minibatch_stddev(h.astype(jnp.float32), self.mbstd_group).astype(h.dtype)
    h = blocks.lrelu(nn.Conv(ws[-1], (3, 3), dtype=self.dtype)(h))
    h = h.reshape(h.shape[0], -1)
    h = blocks.lrelu(nn.Dense(ws[-1], dtype=self.dtype)(h)).astype(jnp.float32)
    out = nn.Dense(1)(h)[:, 0]
    if self.num_classes > 1:
      emb = nn.Embed(self.num_classes, ws[-1])(label)
      out = out + jnp.sum(emb * h, axis=-1)
    return out


def d_loss_fn(kind: str, real_logits, fake_logits):
  if kind == "ns":
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def g_loss_fn(kind: str, fake_logits):
  if kind == "ns":
    return jnp.mean(jax.nn.softplus(-fake_logits))
  return -jnp.mean(fake_logits)


def validate(model_cfg, gan_cfg, data: base.DataSpec) -> int:
  """Checks the config before anything compiles; returns the number of upsamplings."""
  s, z = data.image_size, model_cfg.latent_size
  if z < 1 or s % z or (s // z) & (s // z - 1):
    raise ValueError(
      f"data.image_size={s} with model.latent_size={z}: the image size must be the latent "
      f"grid size times a power of two (for example latent_size=4 with image_size 32, 64, 128)"
    )
  if s < 8:
    raise ValueError(f"data.image_size={s}: the discriminator needs at least 8 pixels")
  for key in ("latent_channels", "g_width", "g_max_width", "d_width", "d_max_width"):
    v = model_cfg[key]
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"model.{key}={v!r}: must be a positive integer")
  chunks = model_cfg.get("chunks", 1)
  if not isinstance(chunks, int) or chunks < 1:
    raise ValueError(f"model.chunks={chunks!r}: must be a positive integer (1: one op per layer)")
  if model_cfg.get("upsample", "shuffle") not in ("shuffle", "bilinear"):
    raise ValueError(f"model.upsample={model_cfg.upsample!r}: must be 'shuffle' (pixel shuffle) or 'bilinear'")
  if model_cfg.get("upsample_init", "lecun") not in ("lecun", "icnr"):
    raise ValueError(f"model.upsample_init={model_cfg.upsample_init!r}: must be 'icnr' or 'lecun'")
  if gan_cfg.loss not in ("ns", "hinge"):
    raise ValueError(f"gan.loss={gan_cfg.loss!r}: must be 'ns' (non-saturating) or 'hinge'")
  if not 0.0 <= gan_cfg.ema_decay < 1.0:
    raise ValueError(f"gan.ema_decay={gan_cfg.ema_decay}: must be in [0, 1)")
  if gan_cfg.r1_gamma < 0:
    raise ValueError(f"gan.r1_gamma={gan_cfg.r1_gamma}: must be >= 0")
  if not isinstance(gan_cfg.r1_every, int) or gan_cfg.r1_every < 1:
    raise ValueError(f"gan.r1_every={gan_cfg.r1_every!r}: must be a positive integer")
  return int(math.log2(s // z))


ROLES = base.MetricRoles(shown=("d_loss", "g_loss"), compare=("d_loss", "g_loss", "r1", "d_real", "d_fake"))
OPTIMIZERS = {"g": "g_lr", "d": "d_lr"}  # one optax optimiser per network, and its learning-rate key


def make(model_cfg, gan_cfg, txs: dict, data: base.DataSpec, compute_dtype=None) -> base.Family:
  """Builds the GAN family.

  Args:
    model_cfg: the ``model`` section (latent grid, widths).
    gan_cfg: the ``gan`` section (loss, R1, EMA, augmentation).
    txs: ``{'g': optax transformation, 'd': ...}``, built by the caller.
    data: the data spec (conditional when ``data.num_classes > 1``).
    compute_dtype: ``jnp.bfloat16`` for mixed precision (``train.precision``):
      both networks compute in it; parameters, optimiser state, EMA, losses,
      R1 and the generator's output stay float32. None: float32 throughout.
  """
  m, g_cfg = model_cfg, gan_cfg
  num_up = validate(m, g_cfg, data)
  num_down = int(math.log2(data.image_size // 4))
  nc = data.num_classes
  icnr = m.get("upsample_init", "lecun") == "icnr"
  gen = Generator(
    data.channels,
    num_up,
    m.g_width,
    m.g_max_width,
    nc,
    tuple(data.one_hot),
    icnr,
    m.get("upsample", "shuffle"),
    compute_dtype,
    m.get("chunks", 1),
  )
  disc = Discriminator(num_down, m.d_width, m.d_max_width, nc, g_cfg.mbstd_group, compute_dtype, m.get("chunks", 1))
  latent_ch, latent_size = m.latent_channels, m.latent_size
  loss_kind, r1_gamma, ema_decay = g_cfg.loss, g_cfg.r1_gamma, g_cfg.ema_decay
  r1_every = g_cfg.r1_every
  # The tensor always starts with RGB (the layout requires it): colour augmentation applies to channels 0..2.
  aug = (g_cfg.augment, g_cfg.aug_translation, g_cfg.aug_cutout, True)

  def latents(key, n, size=latent_size):
    """Sample i's latent grid depends only on (key, i)."""
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    return jax.vmap(lambda k: jax.random.normal(k, (size, size, latent_ch)))(keys)

  def labels_for(key, n):
    return jax.random.randint(key, (n,), 0, nc) if nc > 1 else jnp.zeros((n,), jnp.int32)

  def d_apply(params, x, label, key):
    if aug[0]:
      x = augment.diff_augment(key, x, aug[1], aug[2], aug[3])
    return disc.apply(params, x, label)

  def init(key, batch):
    kg, kd, kr = jax.random.split(key, 3)
    n = batch["x"].shape[0]
    z = jnp.zeros((n, latent_size, latent_size, latent_ch))
    params = {"g": gen.init(kg, z, batch["label"]), "d": disc.init(kd, batch["x"], batch["label"])}
    opt_state = {k: txs[k].init(params[k]) for k in params}
    return base.initial_state(params, opt_state, params["g"], kr)

  def train_step(state: base.TrainState, batch):
    key = jax.random.fold_in(state.rng, state.step)
    kz, kzl, ka1, ka2, ka3, kz2 = jax.random.split(key, 6)
    x, label = batch["x"], batch["label"]
    n = x.shape[0]
    pg, pd = state.params["g"], state.params["d"]

    # Discriminator update.
    fake_label = labels_for(kzl, n)
    fake = gen.apply(pg, latents(kz, n), fake_label)

    def d_objective(pd):
      real_logits = d_apply(pd, x, label, ka1)
      fake_logits = d_apply(pd, jax.lax.stop_gradient(fake), fake_label, ka2)
      loss = d_loss_fn(loss_kind, real_logits, fake_logits)
      if r1_gamma > 0:
        # R1 on every r1_every-th image of the batch: strided, so each device
        # of a sharded batch keeps an equal share. The mean over the subset
        # estimates the same penalty at a fraction of the double-backward cost.
        xr, lr = x[::r1_every], label[::r1_every]
        grad_x = jax.grad(lambda xx: jnp.sum(disc.apply(pd, xx, lr)))(xr)
        r1 = jnp.mean(jnp.sum(grad_x**2, axis=(1, 2, 3)))
      else:
        r1 = jnp.zeros(())
      return loss + 0.5 * r1_gamma * r1, (loss, r1, real_logits, fake_logits)

    (_, (d_loss, r1, real_logits, fake_logits)), gd = jax.value_and_grad(d_objective, has_aux=True)(pd)
    upd, od = txs["d"].update(gd, state.opt_state["d"], pd)
    pd_new = optax.apply_updates(pd, upd)

    # Generator update against the new discriminator.
    def g_objective(pg):
      fake = gen.apply(pg, latents(kz2, n), fake_label)
      return g_loss_fn(loss_kind, d_apply(pd_new, fake, fake_label, ka3))

    g_loss, gg = jax.value_and_grad(g_objective)(pg)
    upd, og = txs["g"].update(gg, state.opt_state["g"], pg)
    pg_new = optax.apply_updates(pg, upd)

    ok = jnp.isfinite(d_loss) & jnp.isfinite(g_loss) & base.tree_all_finite((gd, gg))
    kept = base.finish_step(state, {"g": pg_new, "d": pd_new}, {"g": og, "d": od}, pg_new, ok, ema_decay)
    metrics = {
      "d_loss": d_loss,
      "g_loss": g_loss,
      "r1": r1,
      "d_real": jnp.mean(real_logits),
      "d_fake": jnp.mean(fake_logits),
      "g_grad_norm": optax.tree.norm(gg),
      "d_grad_norm": optax.tree.norm(gd),
      "skipped": kept.skipped,
    }
    return kept, metrics

  def sample(params, key, n, cond=None, temperature=None, latent_grid=None):
    """``temperature`` scales the latent (the truncation trick for a Gaussian latent; default 1)."""
    temperature = 1.0 if temperature is None else temperature
    kz, kl = jax.random.split(key)
    label = labels_for(kl, n) if cond is None else jnp.broadcast_to(jnp.asarray(cond, jnp.int32), (n,))
    return gen.apply(params, temperature * latents(kz, n, latent_grid or latent_size), label)

  def render(params, z, cond):
    return gen.apply(params, z, cond)

  def eval_step(state, batch):
    """Discriminator accuracy on held-out reals vs EMA fakes."""
    n = batch["x"].shape[0]
    key = jax.random.fold_in(state.rng, 2**31 - 1)
    fake_label = labels_for(key, n)
    fake = gen.apply(state.ema_params, latents(key, n), fake_label)
    real_logits = disc.apply(state.params["d"], batch["x"], batch["label"])
    fake_logits = disc.apply(state.params["d"], fake, fake_label)
    acc = 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0))
    return {"d_accuracy": acc, "d_loss": d_loss_fn(loss_kind, real_logits, fake_logits)}

  # Receptive field in latent cells: two 3x3 convs at the latent grid, then
  # per level one conv at the lower and two at the higher resolution; 2 cells
  # of slack on top.
  receptive = 2 + sum(1 / 2 ** (i - 1) + 2 / 2**i for i in range(1, num_up + 1)) + 1 / 2**num_up
  tiling = base.Tiling(render, 2**num_up, latent_ch, int(math.ceil(receptive)) + 2)
  return base.Family(init=init, train_step=train_step, eval_step=eval_step, sample=sample, roles=ROLES, tiling=tiling)
