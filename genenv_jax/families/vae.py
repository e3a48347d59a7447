"""VAE family: convolutional encoder/decoder with a spatial Gaussian latent.

* Posterior q(z|x) = N(mu, diag(exp(logvar))) on a latent grid, reparameterised.
* Likelihood: a discretised logistic per 8-bit channel (PixelCNN++ without the
  mixture) and a categorical over the world's classes for label maps, so the
  ELBO is a true bound on the log-probability of the discrete data.
* ``beta`` weights the KL term in the training loss only; reported bits/dim
  always use beta = 1. ``eval_step`` also reports the importance-weighted
  bound (Burda et al.) with ``vae.iw_samples`` samples.
* ``vae.prior='flow_matching'``: a learned prior for sampling. A small U-Net
  velocity field over the latent grid is trained, in the same step and with
  its own optimiser state, by flow matching on posterior samples
  ``stop_gradient(z ~ q(z|x))`` (the aggregate posterior, which the Gaussian
  prior does not cover); prior samples solve its ODE from noise and decode.
  The encoder and decoder train exactly as with the Gaussian prior, so the
  reported ELBO and importance-weighted bounds keep their meaning (they use
  N(0, I), a valid but looser prior for the bound).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from genenv_jax.families import base
from genenv_jax.families import flow_matching as fm
from genenv_jax.nets import blocks, unet


def widths(levels: int, width: int, max_width: int) -> list[int]:
  return [min(max_width, width * 2**i) for i in range(levels + 1)]  # fine -> coarse


class Encoder(nn.Module):
  levels: int
  width: int
  max_width: int
  latent_channels: int

  @nn.compact
  def __call__(self, x):
    ws = widths(self.levels, self.width, self.max_width)
    h = nn.Conv(ws[0], (3, 3))(x)
    for w in ws[1:]:
      h = blocks.avg_pool2(blocks.ConvBlock(w)(h))
    h = blocks.ConvBlock(ws[-1])(h)
    out = nn.Conv(2 * self.latent_channels, (1, 1))(h)
    return out[..., : self.latent_channels], out[..., self.latent_channels :]


class Decoder(nn.Module):
  levels: int
  width: int
  max_width: int
  out_channels: int

  @nn.compact
  def __call__(self, z):
    ws = widths(self.levels, self.width, self.max_width)[::-1]
    h = blocks.ConvBlock(ws[0])(nn.Conv(ws[0], (3, 3))(z))
    for w in ws[1:]:
      h = blocks.ConvBlock(w)(blocks.lrelu(blocks.Upsample(w)(h)))
    return nn.Conv(self.out_channels, (3, 3))(h)


def kl_diag_gaussian(mu, logvar):
  """KL(N(mu, exp(logvar)) || N(0, 1)), summed over all but the batch axis."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + mu**2 - 1.0 - logvar, axis=tuple(range(1, mu.ndim)))


def discretized_logistic_logp(x, mean, log_scale):
  """log P(x) of 8-bit values mapped to [-1, 1] under a logistic discretised to 256 bins.

  Edge bins take the whole tail, so the 256 probabilities sum to one.
  """
  log_scale = jnp.maximum(log_scale, -7.0)
  centred = x - mean
  inv = jnp.exp(-log_scale)
  plus = inv * (centred + 1.0 / 255.0)
  minus = inv * (centred - 1.0 / 255.0)
  cdf_delta = jax.nn.sigmoid(plus) - jax.nn.sigmoid(minus)
  log_cdf_plus = plus - jax.nn.softplus(plus)  # log sigmoid(plus), for x = -1
  log_one_minus_cdf_min = -jax.nn.softplus(minus)  # log (1 - sigmoid(minus)), for x = 1
  mid = inv * centred
  log_pdf_mid = mid - log_scale - 2.0 * jax.nn.softplus(mid)  # for tiny bins
  inner = jnp.where(cdf_delta > 1e-5, jnp.log(jnp.maximum(cdf_delta, 1e-12)), log_pdf_mid - math.log(127.5))
  return jnp.where(x < -0.999, log_cdf_plus, jnp.where(x > 0.999, log_one_minus_cdf_min, inner))


class Likelihood:
  """Splits the model tensor into 8-bit channels and one-hot label channels."""

  def __init__(self, channels: int, one_hot: tuple[int, int]):
    a, b = one_hot
    self.bits = [i for i in range(channels) if not a <= i < b]
    self.k = b - a
    self.one_hot = one_hot
    self.num_out = 2 * len(self.bits) + self.k

  def num_dims(self, image_size: int) -> int:
    """Data dimensions per image: 8-bit channels, plus one label per pixel."""
    return image_size * image_size * (len(self.bits) + (1 if self.k else 0))

  def log_prob(self, out, x):
    """[b] log p(x | decoder output) in nats."""
    nb = len(self.bits)
    xb = x[..., jnp.array(self.bits)]
    lp = jnp.sum(discretized_logistic_logp(xb, out[..., :nb], out[..., nb : 2 * nb]), axis=(1, 2, 3))
    if self.k:
      a, b = self.one_hot
      target = jnp.argmax(x[..., a:b], axis=-1)
      logits = out[..., 2 * nb :]
      lp = lp + jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), target[..., None], -1), axis=(1, 2, 3))
    return lp

  def mode(self, out, channels: int):
    """Decoder output -> model tensor in [-1, 1]: logistic means, argmax labels."""
    nb = len(self.bits)
    x = jnp.zeros((*out.shape[:3], channels))
    x = x.at[..., jnp.array(self.bits)].set(jnp.clip(out[..., :nb], -1.0, 1.0))
    if self.k:
      a, b = self.one_hot
      onehot = jax.nn.one_hot(jnp.argmax(out[..., 2 * nb :], -1), self.k)
      x = x.at[..., a:b].set(onehot * 2.0 - 1.0)
    return x


def validate(vae_cfg, data: base.DataSpec) -> int:
  s, g = data.image_size, vae_cfg.latent_size
  if g < 1 or s % g or (s // g) & (s // g - 1):
    raise ValueError(
      f"data.image_size={s} with vae.latent_size={g}: the image size must be the latent grid size times a power of two"
    )
  for key in ("latent_channels", "width", "max_width"):
    v = vae_cfg[key]
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"vae.{key}={v!r}: must be a positive integer")
  if vae_cfg.beta <= 0:
    raise ValueError(f"vae.beta={vae_cfg.beta}: must be > 0")
  if vae_cfg.iw_samples < 1:
    raise ValueError(f"vae.iw_samples={vae_cfg.iw_samples}: must be >= 1")
  chunks = vae_cfg.get("chunks", 1)
  if not isinstance(chunks, int) or chunks < 1:
    raise ValueError(f"vae.chunks={chunks!r}: must be a positive integer (1: one op per layer)")
  prior = vae_cfg.get("prior", "gaussian")
  if prior not in PRIORS:
    raise ValueError(f"vae.prior={prior!r}: must be one of {list(PRIORS)}")
  if prior == "flow_matching":
    pw = tuple(vae_cfg.prior_widths)
    if not pw or any(not isinstance(w, int) or w < 1 for w in pw) or g % 2 ** (len(pw) - 1):
      raise ValueError(
        f"vae.prior_widths={pw!r}: positive integers, one per resolution of the {g}x{g} latent grid "
        f"(its side must be divisible by 2**(len - 1))"
      )
    fm.check_solver("midpoint", vae_cfg.prior_steps)
  return int(math.log2(s // g))


ROLES = base.MetricRoles(
  shown=("loss", "bpd"), compare=("loss", "bpd", "kl_bpd"), likelihood={"elbo_bpd": "elbo", "iw_bpd": "iw"}
)
OPTIMIZERS = {"vae": "lr"}
PRIORS = ("gaussian", "flow_matching")


def make(vae_cfg, txs: dict, data: base.DataSpec) -> base.Family:
  """Builds the VAE family.

  Args:
    vae_cfg: the ``vae`` section (latent grid, widths, beta, importance samples, EMA).
    txs: ``{'vae': optax transformation}``, built by the caller.
    data: the data spec.
  """
  v = vae_cfg
  levels = validate(v, data)
  lik = Likelihood(data.channels, tuple(data.one_hot))
  enc = Encoder(levels, v.width, v.max_width, v.latent_channels)
  dec = Decoder(levels, v.width, v.max_width, lik.num_out)
  tx = txs["vae"]
  num_dims = lik.num_dims(data.image_size)
  to_bpd = 1.0 / (num_dims * math.log(2.0))
  beta, k_iw, ema_decay = v.beta, v.iw_samples, v.ema_decay
  learned = v.get("prior", "gaussian") == "flow_matching"
  chunks = v.get("chunks", 1)  # the ELBO's encoder and decoder on interleaved batch slices (blocks.in_chunks)
  prior_net = unet.UNet(v.latent_channels, tuple(v.prior_widths), 1, True) if learned else None

  def elbo_terms(params, key, x):
    eps = jax.random.normal(key, (x.shape[0], v.latent_size, v.latent_size, v.latent_channels))

    def per_sample(x_eps):
      xx, e = x_eps
      mu, logvar = enc.apply(params["enc"], xx)
      z = mu + jnp.exp(0.5 * logvar) * e
      return lik.log_prob(dec.apply(params["dec"], z), xx), kl_diag_gaussian(mu, logvar)

    return blocks.in_chunks(per_sample, (x, eps), chunks)

  def loss_fn(params, key, x):
    rec, kl = elbo_terms(params, key, x)
    loss = jnp.mean(-rec + beta * kl) * to_bpd
    return loss, (jnp.mean(-rec + kl) * to_bpd, jnp.mean(kl) * to_bpd)

  def init(key, batch):
    ke, kd, kr, kp = jax.random.split(key, 4)
    n, g = batch["x"].shape[0], v.latent_size
    z0 = jnp.zeros((n, g, g, v.latent_channels))
    params = {"enc": enc.init(ke, batch["x"]), "dec": dec.init(kd, z0)}
    if not learned:
      return base.initial_state(params, tx.init(params), params, kr)
    params["prior"] = prior_net.init(kp, z0, jnp.zeros((n,)))
    vae_params = {"enc": params["enc"], "dec": params["dec"]}
    opt_state = {"vae": tx.init(vae_params), "prior": tx.init(params["prior"])}
    return base.initial_state(params, opt_state, params, kr)

  def prior_loss(prior_params, key, x, vae_params):
    """Flow matching on posterior samples: the prior learns the aggregate posterior (no gradient to the VAE)."""
    kz, kf = jax.random.split(key)
    mu, logvar = enc.apply(vae_params["enc"], x)
    z = jax.lax.stop_gradient(mu + jnp.exp(0.5 * logvar) * jax.random.normal(kz, mu.shape))
    return fm.cfm_loss(lambda zz, t: prior_net.apply(prior_params, zz, t), kf, z)

  def train_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    if not learned:
      (loss, (bpd, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, key, batch["x"])
      kept = base.optimizer_step(state, tx, loss, grads, ema_decay)
      return kept, {"loss": loss, "bpd": bpd, "kl_bpd": kl, "skipped": kept.skipped}
    kv, kp = key, jax.random.fold_in(key, 0x9819)  # the VAE's randomness as without the prior
    vae_params = {"enc": state.params["enc"], "dec": state.params["dec"]}
    (loss, (bpd, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(vae_params, kv, batch["x"])
    upd, o_vae = tx.update(grads, state.opt_state["vae"], vae_params)
    new_vae = optax.apply_updates(vae_params, upd)
    p_loss, p_grads = jax.value_and_grad(prior_loss)(state.params["prior"], kp, batch["x"], vae_params)
    upd, o_prior = tx.update(p_grads, state.opt_state["prior"], state.params["prior"])
    params = {**new_vae, "prior": optax.apply_updates(state.params["prior"], upd)}
    ok = jnp.isfinite(loss) & jnp.isfinite(p_loss) & base.tree_all_finite((grads, p_grads))
    kept = base.finish_step(state, params, {"vae": o_vae, "prior": o_prior}, params, ok, ema_decay)
    return kept, {"loss": loss, "bpd": bpd, "kl_bpd": kl, "prior_loss": p_loss, "skipped": kept.skipped}

  def iw_bound(params, key, x):
    """[b] importance-weighted log-likelihood bound with k_iw samples (nats)."""
    mu, logvar = enc.apply(params["enc"], x)
    std = jnp.exp(0.5 * logvar)

    def one(k):
      eps = jax.random.normal(k, mu.shape)
      z = mu + std * eps
      log_q = jnp.sum(-0.5 * (eps**2 + logvar + math.log(2 * math.pi)), axis=(1, 2, 3))
      log_p = jnp.sum(-0.5 * (z**2 + math.log(2 * math.pi)), axis=(1, 2, 3))
      return lik.log_prob(dec.apply(params["dec"], z), x) + log_p - log_q

    logw = jax.lax.map(one, jax.random.split(key, k_iw))  # [k, b]
    return jax.nn.logsumexp(logw, axis=0) - math.log(k_iw)

  def eval_step(state, batch):
    key = jax.random.fold_in(state.rng, 2**31 - 1)
    rec, kl = elbo_terms(state.ema_params, key, batch["x"])
    iw = iw_bound(state.ema_params, key, batch["x"])
    return {"elbo_bpd": jnp.mean(-rec + kl) * to_bpd, "iw_bpd": -jnp.mean(iw) * to_bpd}

  def sample(params, key, n, cond=None, temperature=None):
    """Decoded prior samples; sample i depends only on (params, key, i).

    With the learned prior, ``temperature`` scales the ODE's initial noise.
    """
    del cond
    temperature = 1.0 if temperature is None else temperature
    g = v.latent_size
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    z = jax.vmap(lambda k: jax.random.normal(k, (g, g, v.latent_channels)))(keys) * temperature
    if learned:
      z = fm.solve(lambda zz, t: prior_net.apply(params["prior"], zz, t), z, "midpoint", v.prior_steps)
    return lik.mode(dec.apply(params["dec"], z), data.channels)

  def reconstruct(params, x):
    """[n, s, s, C] -> the decoder's mode at the posterior mean."""
    mu, _ = enc.apply(params["enc"], x)
    return lik.mode(dec.apply(params["dec"], mu), data.channels)

  def interpolate(params, x_a, x_b, steps: int):
    """[n, s, s, C] pairs -> [n, steps, s, s, C]: decoded along the line between posterior means."""
    mu_a, _ = enc.apply(params["enc"], x_a)
    mu_b, _ = enc.apply(params["enc"], x_b)
    t = jnp.linspace(0.0, 1.0, steps)[None, :, None, None, None]
    z = (1 - t) * mu_a[:, None] + t * mu_b[:, None]
    flat = lik.mode(dec.apply(params["dec"], z.reshape(-1, *z.shape[2:])), data.channels)
    return flat.reshape(z.shape[0], steps, *flat.shape[1:])

  extras = {"reconstruct": reconstruct, "interpolate": interpolate}
  roles = (
    ROLES._replace(shown=(*ROLES.shown, "prior_loss"), compare=(*ROLES.compare, "prior_loss")) if learned else ROLES
  )
  return base.Family(init=init, train_step=train_step, eval_step=eval_step, sample=sample, roles=roles, extras=extras)
