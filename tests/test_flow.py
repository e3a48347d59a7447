"""Flow family: every layer and the whole flow invert, log-determinants are exact, bits/dim is right."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genenv_jax import families
from genenv_jax.families import base, flow

jax.config.update("jax_enable_x64", False)


def _perturb(params, key, scale=0.3):
  """Moves zero-initialised parameters away from the identity, so tests see a real map."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(tree, [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def _check_bijection(module, x, key):
  params = _perturb(module.init(key, x), jax.random.fold_in(key, 1))
  y, ld = module.apply(params, x)
  x2, ld_inv = module.apply(params, y, True)
  np.testing.assert_allclose(x2, x, atol=2e-4)
  np.testing.assert_allclose(ld_inv, -ld, rtol=1e-4, atol=1e-4)
  # log|det J| of the forward map, by brute force on the flattened input.
  f = lambda v: module.apply(params, v.reshape(x[:1].shape))[0].reshape(-1)
  _, brute = jnp.linalg.slogdet(jax.jacfwd(f)(x[:1].reshape(-1)))
  np.testing.assert_allclose(ld[0], brute, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
  "module", [flow.ActNorm(), flow.InvConv1x1(), flow.Coupling(hidden=8), flow.FlowStep(hidden=8)], ids=str
)
def test_each_layer_inverts_with_exact_logdet(module):
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 2, 4)) * 0.7 + 0.2
  _check_bijection(module, x, jax.random.PRNGKey(1))


def test_squeeze_inverts():
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  assert flow.squeeze(x).shape == (2, 2, 2, 12)
  np.testing.assert_array_equal(flow.unsqueeze(flow.squeeze(x)), x)


def test_actnorm_first_call_normalises():
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 4, 4, 3)) * jnp.array([0.1, 2.0, 5.0]) + jnp.array([3.0, -1.0, 0.0])
  params = flow.ActNorm().init(jax.random.PRNGKey(1), x)
  y, _ = flow.ActNorm().apply(params, x)
  np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def _tiny_glow():
  return flow.Glow(image_size=4, channels=1, levels=2, steps=1, hidden=4)


def test_whole_flow_inverts_with_exact_logdet():
  model = _tiny_glow()
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 4, 4, 1)) - 0.5
  params = _perturb(model.init(jax.random.PRNGKey(1), x, method=flow.Glow.log_prob), jax.random.PRNGKey(2), 0.2)
  top, eps, ld = model.apply(params, x, method=flow.Glow.encode)
  x2 = model.apply(params, top, eps, 1.0, method=flow.Glow.sample)
  np.testing.assert_allclose(x2, x, atol=2e-4)

  def flat(v):
    t, e, _ = model.apply(params, v.reshape(1, 4, 4, 1), method=flow.Glow.encode)
    return jnp.concatenate([t.reshape(-1)] + [q.reshape(-1) for q in e])

  _, brute = jnp.linalg.slogdet(jax.jacfwd(flat)(x[:1].reshape(-1)))
  np.testing.assert_allclose(ld[0], brute, rtol=1e-3, atol=1e-3)


def test_bits_per_dim_matches_brute_force_likelihood():
  model = _tiny_glow()
  x = jax.random.uniform(jax.random.PRNGKey(0), (1, 4, 4, 1)) - 0.5
  params = _perturb(model.init(jax.random.PRNGKey(1), x, method=flow.Glow.log_prob), jax.random.PRNGKey(2), 0.2)

  def flat(v):
    t, e, _ = model.apply(params, v.reshape(1, 4, 4, 1), method=flow.Glow.encode)
    return jnp.concatenate([t.reshape(-1)] + [q.reshape(-1) for q in e])

  z = flat(x.reshape(-1))
  _, logdet = jnp.linalg.slogdet(jax.jacfwd(flat)(x.reshape(-1)))
  brute_logp = jnp.sum(-0.5 * (z**2 + math.log(2 * math.pi))) + logdet
  brute_bpd = (-brute_logp + 16 * math.log(256)) / (16 * math.log(2))
  bpd = flow.bits_per_dim(model.apply(params, x, method=flow.Glow.log_prob), 16)
  np.testing.assert_allclose(bpd[0], brute_bpd, rtol=1e-4)
  # A uniform model of 8-bit data is exactly 8 bits/dim.
  assert flow.bits_per_dim(jnp.zeros(()), 16) == pytest.approx(8.0)


def _config(num_steps=10):
  c = ml_collections.ConfigDict()
  c.flow = ml_collections.ConfigDict(dict(levels=2, steps=2, hidden=16, ema_decay=0.9))
  c.optim = ml_collections.ConfigDict(
    dict(lr=1e-3, b1=0.9, b2=0.999, warmup_steps=1, schedule="constant", clip_norm=10.0)
  )
  c.train = ml_collections.ConfigDict(dict(num_steps=num_steps))
  c.family = "flow"
  return c


def test_flow_family_learns_and_samples():
  fam = families.make(_config(), base.DataSpec(image_size=8, channels=3, num_classes=1))
  rng = np.random.default_rng(0)
  # Structured 8-bit data: a smooth gradient plus little noise.
  grad = np.linspace(-0.8, 0.8, 8)[None, :, None, None] * np.ones((32, 8, 8, 3))
  x = np.round((grad + rng.normal(0, 0.03, grad.shape) + 1) * 127.5) / 127.5 - 1
  batch = {"x": jnp.asarray(x, jnp.float32), "label": jnp.zeros((32,), jnp.int32)}
  state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(fam.train_step)
  first = None
  for _ in range(30):
    state, m = step(state, batch)
    first = first if first is not None else float(m["bpd"])
  assert float(m["bpd"]) < first - 0.5, (first, float(m["bpd"]))
  s = fam.sample(state.ema_params, jax.random.PRNGKey(3), 4, None, 0.7)
  assert s.shape == (4, 8, 8, 3) and bool(jnp.all(jnp.isfinite(s)))


def test_flow_refuses_label_channels_and_bad_levels():
  with pytest.raises(ValueError, match="8-bit channels only"):
    families.make(_config(), base.DataSpec(8, 9, 1, (3, 8)))
  with pytest.raises(ValueError, match="flow.levels=2 with data.image_size=6"):
    families.make(_config(), base.DataSpec(6, 3, 1))


def test_conv_or_dot_computes_the_convolution_and_dots_only_pointwise_kernels():
  """blocks.conv_or_dot: a 1x1 kernel becomes a dot (no convolution left); every other kernel stays a convolution."""
  import flax.linen as nn

  from genenv_jax.nets import blocks

  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 6))
  for kernel, strides in [((1, 1), 1), ((3, 3), 1), ((1, 1), 2)]:
    impls = (jax.lax.conv_general_dilated, blocks.conv_or_dot)
    ref, got = (nn.Conv(7, kernel, strides, conv_general_dilated=f) for f in impls)
    params = ref.init(jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, got.init(jax.random.PRNGKey(1), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(got.apply(params, x), ref.apply(params, x), rtol=1e-5, atol=1e-5)
    hlo = jax.jit(lambda p: got.apply(p, x)).lower(params).as_text()
    assert ("stablehlo.convolution" in hlo) == (kernel != (1, 1) or strides != 1), (kernel, strides)


def _flow_smoke(data_dir, *overrides):
  import os

  from genenv_jax.config_utils import load_config

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return load_config(os.path.join(root, "configs/flow_terrain.py:smoke"), [f"data.data_dir={data_dir!r}", *overrides])


@pytest.mark.parametrize("num_devices", [8])  # the sharded case; 1 device is the same program unsharded (CI time)
def test_conv1x1_as_dot_step_equals_the_convolution_step(data_dir, num_devices):
  """flow.conv1x1_as_dot (the CPU speed option) computes the reference step (1x1 convolutions) up to float rounding."""
  import helpers

  reference, optimised = (_flow_smoke(data_dir, f"flow.conv1x1_as_dot={k}") for k in (False, True))
  helpers.assert_same_steps(reference, optimised, num_devices)  # also: the same parameter tree


def test_conv1x1_as_dot_removes_the_pointwise_convolutions_and_is_checked(data_dir):
  spec = base.DataSpec(16, 4, 1)
  batch = {"x": jnp.zeros((4, 16, 16, 4)), "label": jnp.zeros((4,), jnp.int32)}
  counts = []
  for on in (False, True):
    fam = families.make(_flow_smoke(data_dir, f"flow.conv1x1_as_dot={on}"), spec)
    state = jax.eval_shape(fam.init, jax.random.PRNGKey(0), batch)
    counts.append(jax.jit(fam.train_step).lower(state, batch).as_text().count("stablehlo.convolution"))
  # One 1x1 layer per coupling (levels x steps), each a convolution forward and two in its gradients.
  c = _flow_smoke(data_dir)
  assert counts[0] - counts[1] == 3 * c.flow.levels * c.flow.steps, counts
  bad = _config()
  bad.flow.conv1x1_as_dot = "yes"  # a config file's value (--config.flow... overrides are type-checked already)
  with pytest.raises(ValueError, match=r"flow.conv1x1_as_dot='yes': must be True or False"):
    families.make(bad, spec)


def test_sample_py_writes_the_distribution_that_evaluation_scores(data_dir, tmp_path):
  """Synthesis without --temperature samples at the family's own default (0.7 for the flow), like eval.py."""
  import os

  import tensorflow_datasets as tfds

  from genenv_jax import synthesis, trained, training
  from genenv_jax.config_utils import load_config

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  overrides = [f"data.data_dir={data_dir!r}", "train.num_steps=2", "train.feature_net='none'", "mesh.num_devices=1"]
  training.run(load_config(os.path.join(root, "configs/flow_terrain.py:smoke"), overrides), str(tmp_path / "w"))
  model = trained.load(str(tmp_path / "w"))
  assert model.family.sample_temperature == 0.7
  prov = synthesis.run(model, str(tmp_path / "o"), 8, seed=5, batch_size=8, shard_size=8, progress=False, num_devices=1)
  assert prov["temperature"] == 0.7
  ds = tfds.builder_from_directory(str(tmp_path / "o")).as_data_source("train")
  written = {int(r["index"]): r["image"].astype(int) for r in (ds[i] for i in range(8))}
  for i in (0, 5):
    key = jax.random.fold_in(jax.random.PRNGKey(5), i)
    scored = model.family.sample(model.params, key, 1)  # how evaluation calls it: no temperature
    want = np.asarray(model.layout.to_records(scored)["image"][0]).astype(int)
    assert np.abs(written[i] - want).max() <= 1
    hot = np.asarray(model.layout.to_records(model.family.sample(model.params, key, 1, None, 1.0))["image"][0])
    assert np.abs(written[i] - hot.astype(int)).max() > 1  # what sample.py wrote before: another distribution
