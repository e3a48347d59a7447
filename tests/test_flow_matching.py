"""Flow matching: the loss's minimiser, the ODE against closed forms, likelihood, determinism, bad input."""

import json
import math
import os

import flax.linen as nn
import helpers
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genenv_jax import canvas, families, synthesis, tiling, trained, training
from genenv_jax.config_utils import load_config
from genenv_jax.families import base
from genenv_jax.families import flow_matching as fm
from genenv_jax.nets import unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MU, S = 0.5, 0.3  # the Gaussian target N(MU, S^2 I) of the closed-form tests


def gaussian_velocity(x, t):
  """The exact marginal velocity of straight paths from N(0, I) to N(MU, S^2 I).

  x_t ~ N(t MU, sigma_t^2) with sigma_t^2 = (1-t)^2 + t^2 S^2, and the flow map is
  x_t = t MU + sigma_t x_0, so v = MU + (sigma_t'/sigma_t) (x - t MU).
  """
  t = t.reshape(-1, *([1] * (x.ndim - 1)))
  var = (1 - t) ** 2 + t**2 * S**2
  return MU + (-(1 - t) + t * S**2) / var * (x - t * MU)


def gaussian_logpdf(x):
  return jnp.sum(-0.5 * (((x - MU) / S) ** 2 + math.log(2 * math.pi * S**2)), axis=tuple(range(1, x.ndim)))


@pytest.mark.parametrize("solver,steps,tol", [("euler", 400, 5e-3), ("midpoint", 32, 1e-4), ("heun", 32, 2e-3)])
def test_ode_sample_of_closed_form_velocity_is_the_analytic_answer(solver, steps, tol):
  x0 = jax.random.normal(jax.random.PRNGKey(0), (16, 3, 3, 2))
  got = fm.solve(gaussian_velocity, x0, solver, steps)
  np.testing.assert_allclose(got, MU + S * x0, atol=tol)


def test_adaptive_solver_is_accurate_and_per_sample():
  x0 = jax.random.normal(jax.random.PRNGKey(1), (6, 2, 2, 1))
  got = fm.solve(gaussian_velocity, x0, "adaptive", 1, rtol=1e-6)
  np.testing.assert_allclose(got, MU + S * x0, atol=1e-5)
  # A sample's steps never depend on the rest of the batch.
  alone = fm.solve(gaussian_velocity, x0[:1], "adaptive", 1, rtol=1e-6)
  np.testing.assert_array_equal(got[:1], alone)


@pytest.mark.parametrize("exact", [True, False])
def test_log_likelihood_through_the_ode_matches_the_closed_form(exact):
  x = MU + S * jax.random.normal(jax.random.PRNGKey(2), (8, 2, 2, 3))
  got = fm.log_likelihood(gaussian_velocity, x, jax.random.PRNGKey(3), steps=128, exact=exact)
  np.testing.assert_allclose(got, gaussian_logpdf(x), rtol=1e-4, atol=1e-3)


def test_bits_per_dim_of_a_uniform_density_is_eight():
  d = 12
  np.testing.assert_allclose(fm.bits_per_dim(jnp.array(-d * math.log(2.0)), d), 8.0, rtol=1e-6)


def test_hutchinson_estimate_agrees_with_the_exact_trace_on_a_tiny_image():
  net = unet.UNet(2, (4, 8), attention=True)
  x = jax.random.normal(jax.random.PRNGKey(4), (2, 4, 4, 2))
  t = jnp.array([0.3, 0.8])
  params = jax.jit(net.init)(jax.random.PRNGKey(5), x, t)

  @jax.jit
  def randomised(params):  # random weights everywhere (the last layer starts at zero: the field would be 0)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(6), len(leaves))
    return jax.tree.unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])

  params = randomised(params)
  v = lambda y, s: net.apply(params, y, s)  # noqa: E731
  _, exact = jax.jit(lambda: fm.divergence_exact(v, x, t))()
  probes = jax.random.rademacher(jax.random.PRNGKey(7), (500, *x.shape), dtype=x.dtype)
  est = jax.lax.map(lambda p: fm.divergence_hutchinson(v, x, t, p)[1], probes, batch_size=250)
  mean, se = est.mean(0), est.std(0) / math.sqrt(est.shape[0])
  assert np.all(np.abs(mean - exact) < 4 * se + 1e-3), (mean, exact, se)
  assert np.all(se > 1e-3)  # single probes differ: the check has teeth
  # And through the whole ODE: the log-likelihood averaged over probes equals the exact one.
  lp_exact = jax.jit(lambda: fm.log_likelihood(v, x, jax.random.PRNGKey(8), 4, exact=True))()
  lps = jax.lax.map(lambda k: fm.log_likelihood(v, x, k, 4), jax.random.split(jax.random.PRNGKey(9), 60))
  se = lps.std(0) / math.sqrt(60)
  assert np.all(np.abs(lps.mean(0) - lp_exact) < 4 * se + 1e-3)


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x, t):
    h = jnp.concatenate([x, t[:, None], jnp.sin(6 * t[:, None]), jnp.cos(6 * t[:, None])], -1)
    for _ in range(3):
      h = nn.silu(nn.Dense(64)(h))
    return nn.Dense(1)(h)


def test_trained_velocity_transports_noise_to_a_gaussian_mixture():
  """The loss's minimiser is the marginal velocity: samples get the mixture's moments and modes."""
  net = MLP()
  params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)), jnp.zeros((1,)))
  tx = optax.adam(3e-3)

  def data(key, n):
    ks, kn = jax.random.split(key)
    return (jnp.where(jax.random.bernoulli(ks, 0.5, (n, 1)), 2.0, -2.0) + 0.3 * jax.random.normal(kn, (n, 1)),)[0]

  def step(carry, key):
    p, o = carry
    kd, kl = jax.random.split(key)
    loss, g = jax.value_and_grad(lambda q: fm.cfm_loss(lambda x, t: net.apply(q, x, t), kl, data(kd, 512)))(p)
    u, o = tx.update(g, o, p)
    return (optax.apply_updates(p, u), o), loss

  (params, _), losses = jax.jit(lambda c, k: jax.lax.scan(step, c, k))(
    (params, tx.init(params)), jax.random.split(jax.random.PRNGKey(1), 3000)
  )
  assert losses[-200:].mean() < losses[:50].mean()
  x = fm.solve(
    lambda x, t: net.apply(params, x, t), jax.random.normal(jax.random.PRNGKey(2), (4000, 1)), "midpoint", 32
  )
  x = np.asarray(x[:, 0])
  want = data(jax.random.PRNGKey(3), 4000)[:, 0]
  assert abs(x.mean()) < 0.15
  assert abs(x.var() / np.var(want) - 1) < 0.1
  assert abs((x > 0).mean() - 0.5) < 0.05
  assert (np.abs(np.abs(x) - 2.0) < 0.9).mean() > 0.93  # two modes, little mass between them


# --- the family in the library ------------------------------------------------


@pytest.fixture(scope="module")
def fm_workdir(tmp_path_factory, data_dir):
  w = str(tmp_path_factory.mktemp("fm"))
  cfg = load_config(
    os.path.join(ROOT, "configs/fm_city.py:smoke"),
    [f"data.data_dir={data_dir!r}", "train.num_steps=12", "train.feature_net='none'"],
  )
  training.run(cfg, w)
  return w


def test_samples_identical_on_one_and_eight_devices_and_any_batch_size(fm_workdir, tmp_path):
  model = trained.load(fm_workdir)
  x = np.asarray(model.family.sample(model.params, jax.random.PRNGKey(0), 4))
  assert np.abs(x[..., :3] - x[:1, ..., :3]).max() > 0.05  # the samples differ: a real field was trained
  sums = []
  # Batch 24 on 1 device against 64 on 8: another batch size and device count at once (both ragged: 40 scenes
  # are 24 + 16 and 40 of 64); any difference from either would show (a third run cost 40 s of CI).
  for name, bs, nd in (("a", 24, 1), ("b", 64, 8)):
    synthesis.run(model, str(tmp_path / name), 40, seed=3, batch_size=bs, shard_size=16, num_devices=nd, progress=False)
    sums.append(helpers._checksums(tmp_path / name))
  assert sums[0] == sums[1]


@pytest.mark.slow
def test_sample_py_resume_after_sigkill_gives_the_same_bytes(fm_workdir, tmp_path):
  helpers.check_sigkill_resume(fm_workdir, tmp_path)


def test_solver_and_steps_change_samples_and_are_checked(fm_workdir):
  model = trained.load(fm_workdir)
  key = jax.random.PRNGKey(0)
  a = model.family.sample(model.params, key, 2, solver="euler", steps=1)
  b = model.family.sample(model.params, key, 2, solver="heun", steps=4)
  assert np.abs(np.asarray(a) - np.asarray(b)).max() > 0
  with pytest.raises(ValueError, match=r"fm.solver='rk99': must be one of"):
    model.family.sample(model.params, key, 2, solver="rk99")
  with pytest.raises(ValueError, match=r"fm.sample_steps=-2: must be a positive integer"):
    model.family.sample(model.params, key, 2, steps=-2)


@pytest.mark.parametrize(
  "override,message",
  [
    ("fm.solver='rk4'", r"fm.solver='rk4': must be one of \['euler', 'midpoint', 'heun', 'adaptive'\]"),
    ("fm.sample_steps=0", r"fm.sample_steps=0: must be a positive integer"),
    ("fm.time_sampling='beta'", r"fm.time_sampling='beta'"),
    ("fm.widths=(8, 16, 32, 64, 128)", r"image size must be divisible by 2\*\*4 and leave at least 2 pixels"),
  ],
)
def test_bad_config_values_are_refused_before_compiling(override, message, data_dir):
  cfg = load_config(os.path.join(ROOT, "configs/fm_city.py:smoke"), [override])
  with pytest.raises(ValueError, match=message):
    families.make(cfg, base.DataSpec(16, 9, 1, (3, 8)))


def test_terrain_reports_test_bits_per_dim(data_dir):
  cfg = load_config(os.path.join(ROOT, "configs/fm_terrain.py:smoke"), [f"data.data_dir={data_dir!r}"])
  su = training.Setup(cfg)
  state = su.init_state()
  m = jax.device_get(su.eval_fn(state, su.loader.global_batch_at(0)))
  # An untrained field is 0: the ODE maps x to itself, so bits/dim is the standard normal's on [-1, 1) data.
  assert set(m) == {"loss", "bpd"} and 8.0 < float(m["bpd"]) < 12.0
  assert su.family.roles.likelihood == {"bpd": "ode"}
  city = families.make(load_config(os.path.join(ROOT, "configs/fm_city.py:smoke")), base.DataSpec(16, 9, 1, (3, 8)))
  assert city.roles.likelihood == {}  # label channels are not 8-bit data


# --- large scenes: one canvas-wide ODE ----------------------------------------


def test_initial_noise_is_a_pure_function_of_global_coordinates():
  big = canvas.initial_noise(5, -8, 16, 40, 48, 3)
  small = canvas.initial_noise(5, 4, 30, 10, 12, 3)
  np.testing.assert_array_equal(small, big[12:22, 14:26])
  assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05
  assert not np.array_equal(canvas.initial_noise(6, 4, 30, 10, 12, 3), small)


def test_windowed_velocity_blends_to_the_pointwise_field():
  """A pointwise field (v = MU-target velocity) is the same from any window: the canvas ODE equals it per pixel."""
  cv = base.Canvas(lambda p, x, t, lab: gaussian_velocity(x, t), 16, 2, False, lambda x: x, "midpoint", 32)
  fam = base.Family(None, None, None, None, fm.ROLES, canvas=cv)
  cfg = load_config(os.path.join(ROOT, "configs/fm_city.py:smoke"))
  render, pl = canvas.make_renderer(fam, cfg, 40, 56, chunk=4)
  assert (pl.height, pl.width) == (40, 56) and len(pl.origins) == 4 * 6
  noise = canvas.initial_noise(0, 0, 0, pl.height, pl.width, 2)
  got = np.asarray(render(None, jnp.asarray(noise), jnp.int32(0)))
  np.testing.assert_allclose(got, MU + S * noise, atol=1e-4)


def test_large_scene_same_on_one_and_eight_devices_and_refuses_bad_input(fm_workdir, tmp_path):
  from genenv_jax import parallel

  model = trained.load(fm_workdir)
  a = canvas.render_scene(model, 40, 24, seed=1, mesh=parallel.make_mesh(1))
  b = canvas.render_scene(model, 40, 24, seed=1, mesh=parallel.make_mesh(8))
  assert a.shape == (40, 24, 9)
  np.testing.assert_allclose(a[..., :3], b[..., :3], atol=1e-4)
  np.testing.assert_array_equal(a[..., 3:8], b[..., 3:8])  # the same labels
  with pytest.raises(ValueError, match="at most 17 Mpixels"):
    canvas.render_scene(model, 8192, 4096)
  cfg = load_config(os.path.join(ROOT, "configs/fm_city.py:smoke"), ["fm.attention=True"])
  fam = families.make(cfg, model.spec)
  with pytest.raises(ValueError, match=r"window=32 with fm.attention=True"):
    canvas.make_renderer(fam, cfg, 64, 64, window=32)
  with pytest.raises(ValueError, match=r"window=12: must be a multiple of 8"):
    canvas.make_renderer(model.family, model.config, 64, 64, window=12)
  # sample.py's large-scene path writes the canvas.
  tiling.write_large_scene(model, str(tmp_path / "big"), 40, 24, seed=1, progress=False)
  from PIL import Image

  assert Image.open(tmp_path / "big" / "scene_labels.png").size == (24, 40)


def test_sampler_choice_at_synthesis_is_checked_and_recorded(fm_workdir, smoke_workdir, tmp_path):
  model = trained.load(fm_workdir)
  out = str(tmp_path / "ds")
  synthesis.run(model, out, 8, batch_size=8, shard_size=8, progress=False, num_devices=1)
  other = trained.with_sampler(model, "heun", 3)
  with pytest.raises(ValueError, match=r"sampler: existing 'midpoint/2' vs requested 'heun/3'"):
    synthesis.run(other, out, 8, batch_size=8, shard_size=8, progress=False, num_devices=1)
  synthesis.run(other, str(tmp_path / "heun"), 8, batch_size=8, shard_size=8, progress=False, num_devices=1)
  with open(tmp_path / "heun" / synthesis.SETTINGS_FILE) as f:
    assert json.load(f)["sampler"] == "heun/3"
  a = model.family.sample(model.params, jax.random.PRNGKey(0), 2)
  b = other.family.sample(other.params, jax.random.PRNGKey(0), 2)
  assert np.abs(np.asarray(a) - np.asarray(b)).max() > 0  # the rebuilt family samples with its own solver
  with pytest.raises(ValueError, match=r"fm.solver='rk45': must be one of"):
    trained.with_sampler(model, "rk45")
  with pytest.raises(ValueError, match=r"--solver/--steps: for flow matching only; family='gan'"):
    trained.with_sampler(trained.load(smoke_workdir), "euler")


def test_flow_matching_exports_to_every_engine(fm_workdir, tmp_path):
  """It was refused with 'not fully convolutional; large scenes need a GAN' though its canvas draws large scenes."""
  from genenv_jax import exports

  model = trained.load(fm_workdir)
  names = ["unity", "tiled", "gltf"]
  exports.check_model(model, names, (33, 33))
  scene = exports.from_model(model, 33, 33, 2, str(tmp_path))
  want = canvas.render_scene(model, 33, 33, seed=2)
  np.testing.assert_allclose(scene.height, (want[..., -1] + 1) / 2, atol=1e-5)  # the canvas sample.py writes
  written = exports.export(scene, str(tmp_path / "out"), names, {"fm": 1})
  assert set(written) == set(names) and "city.glb" in written["gltf"]


def test_large_scene_cache_resumes_an_interrupted_evaluation_with_the_same_scenes(fm_workdir, tmp_path, monkeypatch):
  from genenv_jax import large_eval

  model = trained.load(fm_workdir)
  cache = str(tmp_path / "cache")
  first = large_eval.model_regions(model, 2, 32, 32, desc="model scenes", cache_dir=cache)
  assert sorted(os.listdir(cache)) == ["model_scenes_32x32_seed0.npy", "model_scenes_32x32_seed1.npy"]
  # Interrupted after the first scene: the second file torn, the first kept. A rerun draws only the torn one.
  open(os.path.join(cache, "model_scenes_32x32_seed1.npy"), "wb").write(b"\x93NUMPY torn")
  drawn = []
  real_render = canvas.render_scene
  monkeypatch.setattr(canvas, "render_scene", lambda m, h, w, seed: drawn.append(seed) or real_render(m, h, w, seed))
  again = large_eval.model_regions(model, 2, 32, 32, desc="model scenes", cache_dir=cache)
  assert drawn == [1]
  for k in first:
    np.testing.assert_array_equal(first[k], again[k])
  # The cache is keyed by the weights: the same weights give the same key, changed weights another.
  key = large_eval.weights_key(model.params)
  moved = jax.tree.map(lambda a: a + 1e-3, model.params)
  assert large_eval.weights_key(trained.load(fm_workdir).params) == key != large_eval.weights_key(moved)


def test_an_untrained_network_keeps_its_noise_so_its_floor_scenes_are_drawn_without_the_ode(fm_workdir):
  import dataclasses

  model = trained.load(fm_workdir)
  batch = {"x": np.zeros((2, 16, 16, model.spec.channels), np.float32), "label": np.zeros((2,), np.int32)}
  fresh = dataclasses.replace(model, params=jax.jit(model.family.init)(jax.random.PRNGKey(0), batch).ema_params)
  assert canvas.zero_velocity(fresh, fresh.params) and not canvas.zero_velocity(model, model.params)
  np.testing.assert_array_equal(canvas.still_scene(fresh, 40, 24, seed=5), canvas.render_scene(fresh, 40, 24, seed=5))
