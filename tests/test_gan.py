"""GAN family: shapes at every size, losses, skipped non-finite steps, conditioning."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genenv_jax import families
from genenv_jax.families import base, gan


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_generator_and_discriminator_shapes(smoke_config, size):
  cfg = smoke_config(f"data.image_size={size}")
  spec = base.DataSpec(image_size=size, channels=9, num_classes=1)
  fam = families.make(cfg, spec)
  batch = {"x": jnp.zeros((2, size, size, 9)), "label": jnp.zeros((2,), jnp.int32)}
  state = jax.eval_shape(fam.init, jax.random.PRNGKey(0), batch)
  x = jax.eval_shape(functools.partial(fam.sample, n=3), state.ema_params, jax.random.PRNGKey(1))
  assert x.shape == (3, size, size, 9)
  num_down = int(np.log2(size // 4))
  d = gan.Discriminator(num_down, cfg.model.d_width, cfg.model.d_max_width)
  logits = jax.eval_shape(d.apply, state.params["d"], batch["x"])
  assert logits.shape == (2,)


def test_generator_is_fully_convolutional(smoke_config):
  cfg = smoke_config()
  fam = families.make(cfg, base.DataSpec(16, 9, 1))
  batch = {"x": jnp.zeros((2, 16, 16, 9)), "label": jnp.zeros((2,), jnp.int32)}
  state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  big = fam.sample(state.ema_params, jax.random.PRNGKey(1), 2, latent_grid=8)  # 8x8 latent grid
  assert big.shape == (2, 32, 32, 9)  # 16 px from a 4x4 grid: 4x upsampling
  assert float(jnp.abs(big).max()) <= 1.0


def test_samples_depend_only_on_key_and_index(smoke_config):
  fam = families.make(smoke_config(), base.DataSpec(16, 9, 1))
  batch = {"x": jnp.zeros((2, 16, 16, 9)), "label": jnp.zeros((2,), jnp.int32)}
  state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  a = fam.sample(state.ema_params, jax.random.PRNGKey(5), 6)
  b = fam.sample(state.ema_params, jax.random.PRNGKey(5), 3)
  np.testing.assert_allclose(a[:3], b, atol=1e-5)  # batch size changes conv summation order


def test_losses():
  real, fake = jnp.array([2.0, 3.0]), jnp.array([-1.0, 0.5])
  np.testing.assert_allclose(
    gan.d_loss_fn("ns", real, fake),
    np.mean(np.log1p(np.exp(-np.array([2.0, 3.0])))) + np.mean(np.log1p(np.exp(np.array([-1.0, 0.5])))),
    rtol=1e-6,
  )
  np.testing.assert_allclose(gan.d_loss_fn("hinge", real, fake), 0.0 + (0.0 + 1.5) / 2, rtol=1e-6)
  np.testing.assert_allclose(gan.g_loss_fn("hinge", fake), 0.25, rtol=1e-6)


def test_training_moves_params_and_updates_ema(smoke_config):
  fam = families.make(smoke_config(), base.DataSpec(16, 9, 1))
  rng = np.random.default_rng(0)
  batch = {"x": jnp.asarray(rng.uniform(-1, 1, (4, 16, 16, 9)), jnp.float32), "label": jnp.zeros((4,), jnp.int32)}
  s0 = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  s1, m = jax.jit(fam.train_step)(s0, batch)
  assert int(s1.step) == 1 and int(s1.skipped) == 0
  for k in ("g", "d"):
    diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), s0.params[k], s1.params[k])
    assert max(jax.tree.leaves(diff)) > 0
  assert np.isfinite(float(m["d_loss"])) and float(m["r1"]) > 0


def test_non_finite_step_is_skipped_and_counted(smoke_config):
  fam = families.make(smoke_config(), base.DataSpec(16, 9, 1))
  batch = {"x": jnp.full((4, 16, 16, 9), jnp.nan), "label": jnp.zeros((4,), jnp.int32)}
  s0 = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  s1, m = jax.jit(fam.train_step)(s0, batch)
  assert int(s1.step) == 1 and int(s1.skipped) == 1
  same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s0.params, s1.params)
  assert all(jax.tree.leaves(same))


def test_class_conditioning_changes_samples(smoke_config):
  cfg = smoke_config("data.conditional=True")
  fam = families.make(cfg, base.DataSpec(16, 9, 3))
  batch = {"x": jnp.zeros((2, 16, 16, 9)), "label": jnp.array([0, 2], jnp.int32)}
  state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  a = fam.sample(state.ema_params, jax.random.PRNGKey(1), 2, 0)
  b = fam.sample(state.ema_params, jax.random.PRNGKey(1), 2, 2)
  assert float(jnp.abs(a - b).max()) > 1e-4


def test_diff_augment_runs_inside_step(smoke_config):
  fam = families.make(smoke_config("gan.augment=True", "gan.loss='hinge'"), base.DataSpec(16, 9, 1))
  batch = {"x": jnp.zeros((4, 16, 16, 9)), "label": jnp.zeros((4,), jnp.int32)}
  s, m = jax.jit(fam.train_step)(jax.jit(fam.init)(jax.random.PRNGKey(0), batch), batch)
  assert np.isfinite(float(m["g_loss"]))


def test_train_step_compiles_once_and_stays_finite(smoke_config):
  import chex

  fam = families.make(smoke_config(), base.DataSpec(16, 9, 1))
  rng = np.random.default_rng(1)
  batch = {"x": jnp.asarray(rng.uniform(-1, 1, (4, 16, 16, 9)), jnp.float32), "label": jnp.zeros((4,), jnp.int32)}
  state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(chex.assert_max_traces(fam.train_step, n=1), donate_argnums=(0,))
  for _ in range(3):
    state, m = step(state, batch)
  chex.assert_tree_all_finite(state.params)
  chex.assert_shape(fam.sample(state.ema_params, jax.random.PRNGKey(2), 2), (2, 16, 16, 9))


def test_diff_augment_translation_and_cutout():
  from genenv_jax.families import augment

  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 9), minval=-1, maxval=1)
  moved = augment.translate(jax.random.PRNGKey(1), x, 0.125)
  # Every output is the input shifted by at most 2 px with -1 fill: some shift matches exactly.
  for i in range(4):
    pad = np.pad(np.asarray(x[i]), ((2, 2), (2, 2), (0, 0)), constant_values=-1.0)
    hits = [np.array_equal(pad[a : a + 16, b : b + 16], np.asarray(moved[i])) for a in range(5) for b in range(5)]
    assert any(hits)
  cut = np.asarray(augment.cutout(jax.random.PRNGKey(2), x, 0.25))
  zeroed = (cut == 0).all(-1)
  assert (zeroed.sum((1, 2)) >= 9).all()  # a square of side >= 3 in every image
  np.testing.assert_array_equal(cut[~zeroed], np.asarray(x)[~zeroed])


def test_bfloat16_opt_in_keeps_float32_state_and_tracks_the_float32_step(smoke_config):
  """train.precision='bfloat16': same parameters (float32), losses and gradients within bfloat16's error."""
  spec = base.DataSpec(16, 9, 1, (3, 8))
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 9)), jnp.float32)
  batch = {"x": x, "label": jnp.zeros((8,), jnp.int32)}
  out = {}
  for precision in ("float32", "bfloat16"):
    fam = families.make(smoke_config(f"train.precision={precision!r}"), spec)
    state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
    step = jax.jit(fam.train_step)
    convs = [line for line in step.lower(state, batch).as_text().splitlines() if "stablehlo.convolution" in line]
    # The opt-in changes what runs: every convolution of the bfloat16 step takes bfloat16 inputs, none of float32's.
    assert convs and all(("xbf16>" in line) == (precision == "bfloat16") for line in convs), precision
    new, m = step(state, batch)
    out[precision] = (state, new, m)
  (s32, _, m32), (s16, n16, m16) = out["float32"], out["bfloat16"]
  # The same parameter tree, all float32 (only the computation changes), and the same initial values.
  assert jax.tree.structure(s32.params) == jax.tree.structure(s16.params)
  for a, b in zip(jax.tree.leaves(s32.params), jax.tree.leaves(s16.params)):
    assert a.dtype == b.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
  floats = [
    leaf for leaf in jax.tree.leaves((n16.opt_state, n16.ema_params)) if jnp.issubdtype(leaf.dtype, jnp.floating)
  ]
  assert floats and all(leaf.dtype == jnp.float32 for leaf in floats)
  for k in ("d_loss", "g_loss"):
    np.testing.assert_allclose(float(m16[k]), float(m32[k]), rtol=3e-2)
  np.testing.assert_allclose(float(m16["d_grad_norm"]), float(m32["d_grad_norm"]), rtol=5e-2)
  np.testing.assert_allclose(float(m16["g_grad_norm"]), float(m32["g_grad_norm"]), rtol=5e-2)
  # The generator's output from the same parameters: within bfloat16's rounding.
  fams = {p: families.make(smoke_config(f"train.precision={p!r}"), spec) for p in ("float32", "bfloat16")}
  x32, x16 = (
    jax.jit(fams[p].sample, static_argnums=2)(s32.ema_params, jax.random.PRNGKey(5), 16)
    for p in ("float32", "bfloat16")
  )
  assert x16.dtype == jnp.float32
  assert float(jnp.mean(jnp.abs(x16 - x32))) < 0.02, float(jnp.mean(jnp.abs(x16 - x32)))


def test_precision_is_checked(smoke_config, data_dir):
  from genenv_jax import config_utils

  with pytest.raises(ValueError, match=r"train.precision='float16': must be one of \['float32', 'bfloat16'\]"):
    config_utils.validate(smoke_config("train.precision='float16'"))
  flow_cfg = config_utils.load_config("configs/flow_terrain.py:smoke", ["train.precision='bfloat16'"])
  with pytest.raises(ValueError, match=r"family='flow' trains in \['float32'\] \(bfloat16 is an opt-in of the GAN"):
    families.make(flow_cfg, base.DataSpec(16, 4, 1))


@pytest.mark.parametrize("num_devices", [8])  # the sharded case; 1 device is the same program unsharded (CI time)
def test_chunked_step_equals_the_one_op_per_layer_step(smoke_config, num_devices):
  """model.chunks (the CPU speed option) computes the reference step (chunks=1) up to float rounding."""
  import helpers

  helpers.assert_same_steps(smoke_config("model.chunks=1"), smoke_config("model.chunks=2"), num_devices)


def _num_convolutions(fam, batch) -> int:
  state = jax.eval_shape(fam.init, jax.random.PRNGKey(0), batch)
  return jax.jit(fam.train_step).lower(state, batch).as_text().count("stablehlo.convolution")


def test_chunks_run_each_slice_as_its_own_ops(smoke_config):
  """model.chunks=2 really splits: the step holds more convolutions (each slice's own), not the same program."""
  spec = base.DataSpec(16, 9, 1, (3, 8))
  batch = {"x": jnp.zeros((8, 16, 16, 9)), "label": jnp.zeros((8,), jnp.int32)}
  one, two = (_num_convolutions(families.make(smoke_config(f"model.chunks={k}"), spec), batch) for k in (1, 2))
  assert two > 1.5 * one, (one, two)


def test_chunks_split_the_batch_into_interleaved_slices():
  from genenv_jax.nets import blocks

  x = jnp.arange(24.0).reshape(12, 2)
  seen = []
  y = blocks.in_chunks(lambda c: (seen.append(np.asarray(c[:, 0])), c * 2)[1], x, 3)
  np.testing.assert_array_equal(y, x * 2)  # reassembled in the original order
  np.testing.assert_array_equal(seen[0], [0, 6, 12, 18])  # slice 0: samples 0, 3, 6, 9
  assert len(blocks.in_chunks(lambda c: (seen.append(c.shape), c)[1], x[:5], 3)) == 5 and seen[-1] == (5, 2)


def test_chunks_are_checked(smoke_config):
  with pytest.raises(ValueError, match=r"model.chunks=0: must be a positive integer"):
    families.make(smoke_config("model.chunks=0"), base.DataSpec(16, 9, 1))
