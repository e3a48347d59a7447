"""VAE family: closed-form KL, a normalised likelihood, learning, IW bound <= ELBO."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genenv_jax import families
from genenv_jax.families import base, vae


def test_kl_matches_closed_form_and_monte_carlo():
  mu = jnp.array([[0.5, -1.0, 0.0]])
  logvar = jnp.array([[0.2, -0.7, 0.0]])
  sd = np.exp(0.5 * np.asarray(logvar))
  closed = np.sum(np.log(1 / sd) + (sd**2 + np.asarray(mu) ** 2) / 2 - 0.5)
  np.testing.assert_allclose(vae.kl_diag_gaussian(mu, logvar)[0], closed, rtol=1e-6)
  z = np.asarray(mu) + sd * np.random.default_rng(0).normal(size=(400_000, 3))
  log_q = np.sum(-0.5 * (((z - np.asarray(mu)) / sd) ** 2) - np.log(sd), axis=1)
  log_p = np.sum(-0.5 * z**2, axis=1)
  assert abs(np.mean(log_q - log_p) - closed) < 0.01


def test_discretized_logistic_is_normalised():
  values = jnp.arange(256) / 127.5 - 1.0
  for mean, log_scale in [(0.0, -3.0), (0.9, -5.0), (-1.0, 0.5), (0.3, -8.0)]:
    lp = vae.discretized_logistic_logp(values, mean, log_scale)
    np.testing.assert_allclose(jnp.sum(jnp.exp(lp)), 1.0, atol=2e-3)


def _config():
  c = ml_collections.ConfigDict()
  c.family = "vae"
  c.vae = ml_collections.ConfigDict(
    dict(latent_size=2, latent_channels=4, width=8, max_width=16, beta=1.0, iw_samples=8, ema_decay=0.0)
  )
  c.optim = ml_collections.ConfigDict(
    dict(lr=2e-3, b1=0.9, b2=0.999, warmup_steps=1, schedule="constant", clip_norm=10.0)
  )
  c.train = ml_collections.ConfigDict(dict(num_steps=100))
  return c


def test_vae_learns_with_labels_and_iw_bound_is_tighter():
  spec = base.DataSpec(image_size=8, channels=6, num_classes=1, one_hot=(3, 6))
  fam = families.make(_config(), spec)
  rng = np.random.default_rng(0)
  grad = np.linspace(-0.8, 0.8, 8)[None, :, None, None] * np.ones((16, 8, 8, 3))
  rgb = np.round((grad + rng.normal(0, 0.02, grad.shape) + 1) * 127.5) / 127.5 - 1
  labels = np.eye(3)[(np.arange(8)[None, :, None] // 3) * np.ones((16, 1, 8), int)] * 2 - 1
  batch = {"x": jnp.asarray(np.concatenate([rgb, labels], -1), jnp.float32), "label": jnp.zeros((16,), jnp.int32)}
  state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(fam.train_step)
  state, m0 = step(state, batch)
  for _ in range(60):
    state, m = step(state, batch)
  assert float(m["bpd"]) < float(m0["bpd"]) - 1.0, (float(m0["bpd"]), float(m["bpd"]))
  ev = jax.jit(fam.eval_step)(state, batch)
  assert float(ev["iw_bpd"]) <= float(ev["elbo_bpd"]) + 1e-4
  s = fam.sample(state.ema_params, jax.random.PRNGKey(1), 3)
  assert s.shape == (3, 8, 8, 6)
  # Label channels of a sample are exactly one-hot in [-1, 1].
  np.testing.assert_array_equal(np.sort(np.asarray(s[..., 3:]), -1)[..., -1], 1.0)


def test_vae_bad_latent_size():
  with pytest.raises(ValueError, match="vae.latent_size=3"):
    cfg = _config()
    cfg.vae.latent_size = 3
    families.make(cfg, base.DataSpec(8, 3, 1))


def test_interpolation_ends_at_the_reconstructions():
  spec = base.DataSpec(image_size=8, channels=3, num_classes=1)
  fam = families.make(_config(), spec)
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 8, 8, 3), minval=-1, maxval=1)
  state = jax.jit(fam.init)(jax.random.PRNGKey(1), {"x": x, "label": jnp.zeros((2,), jnp.int32)})
  rec = fam.extras["reconstruct"](state.params, x)
  path = fam.extras["interpolate"](state.params, x[:1], x[1:], 5)
  assert rec.shape == (2, 8, 8, 3) and path.shape == (1, 5, 8, 8, 3)
  np.testing.assert_allclose(path[0, 0], rec[0], atol=1e-5)
  np.testing.assert_allclose(path[0, -1], rec[1], atol=1e-5)


def test_learned_prior_leaves_the_vae_as_it_was_and_learns_the_aggregate_posterior():
  spec = base.DataSpec(image_size=8, channels=3, num_classes=1)
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)), jnp.float32)
  batch = {"x": x, "label": jnp.zeros((16,), jnp.int32)}
  runs = {}
  for prior in ("gaussian", "flow_matching"):
    cfg = _config()
    # beta << 1: posteriors far from N(0, I), so a prior that learns them has something to show.
    cfg.vae.update(dict(prior=prior, prior_widths=(32, 32), prior_steps=8, beta=0.02))
    fam = families.make(cfg, spec)
    state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
    step = jax.jit(fam.train_step)
    for _ in range(300):
      state, m = step(state, batch)
    runs[prior] = (fam, state, m)
  (_, sg, _), (fam, sf, mf) = runs["gaussian"], runs["flow_matching"]
  # The encoder and decoder trained exactly as without the prior (no gradient reaches them).
  for k in ("enc", "dec"):
    for a, b in zip(jax.tree.leaves(sg.params[k]), jax.tree.leaves(sf.params[k])):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # The prior's samples have the aggregate posterior's moments, which N(0, I) does not.
  enc = vae.Encoder(2, 8, 16, 4)
  mu, logvar = enc.apply(sf.params["enc"], x)
  post = mu[None] + jnp.exp(0.5 * logvar)[None] * jax.random.normal(jax.random.PRNGKey(2), (64, *mu.shape))
  post = np.asarray(post).reshape(-1, 4)
  prior_net = vae.unet.UNet(4, (32, 32), 1, True)
  z0 = jax.random.normal(jax.random.PRNGKey(3), (1024, 2, 2, 4))
  z = np.asarray(vae.fm.solve(lambda zz, t: prior_net.apply(sf.params["prior"], zz, t), z0, "midpoint", 8)).reshape(
    -1, 4
  )
  gap_learned = np.abs(z.mean(0) - post.mean(0)).max() + np.abs(z.std(0) - post.std(0)).max()
  gap_gauss = np.abs(post.mean(0)).max() + np.abs(1 - post.std(0)).max()
  assert gap_learned < 0.5 * gap_gauss, (gap_learned, gap_gauss)
  assert fam.roles.shown[-1] == "prior_loss" and np.isfinite(float(mf["prior_loss"]))


@pytest.mark.parametrize("num_devices", [8])  # the sharded case; 1 device is the same program unsharded (CI time)
def test_chunked_elbo_equals_the_one_op_per_layer_step(data_dir, num_devices):
  """vae.chunks (the CPU speed option) computes the reference step (chunks=1) up to float rounding."""
  import os

  import helpers

  from genenv_jax.config_utils import load_config

  spec = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs/vae_terrain.py:smoke")
  runs = [
    helpers.run_steps(load_config(spec, [f"data.data_dir={data_dir!r}", f"vae.chunks={k}"]), num_devices)
    for k in (1, 4)
  ]
  (ref_metrics, ref_params), (got_metrics, got_params) = runs
  # It really splits: the chunked step holds each slice's own convolutions.
  counts = []
  for k in (1, 4):
    fam = families.make(load_config(spec, [f"vae.chunks={k}"]), base.DataSpec(16, 10, 1, (3, 9)))
    batch = {"x": jnp.zeros((8, 16, 16, 10)), "label": jnp.zeros((8,), jnp.int32)}
    state = jax.eval_shape(fam.init, jax.random.PRNGKey(0), batch)
    counts.append(jax.jit(fam.train_step).lower(state, batch).as_text().count("stablehlo.convolution"))
  assert counts[1] > 3 * counts[0], counts
  np.testing.assert_allclose(got_metrics, ref_metrics, rtol=1e-4, atol=1e-5)
  # Adam normalises each gradient element, so rounding in a near-zero gradient can move its parameter by a
  # fraction of one step (lr 5e-4); a wrong computation moves most parameters by whole steps.
  for a, b in zip(jax.tree.leaves(ref_params), jax.tree.leaves(got_params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
