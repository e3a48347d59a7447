"""``hier.top_trace``: a three-level model's top map carries one more channel, the share of each top block's
coarse pixels where a class (water) covers at least 1/factor: what the top level is trained on equals what the
coarse level is conditioned on, the canvas carries it, a sketch holds it. (The family trains and exports it:
tests/test_hier3.py's trained smoke model has it.)"""

import os
import types

import helpers
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genenv_jax import canvas, models, parallel, sketch, training
from genenv_jax.config_utils import load_config
from genenv_jax.data import coarse
from genenv_jax.families import base
from genenv_jax.families import flow_matching_hier as fmh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MU, S, toward = helpers.MU, helpers.S, helpers.toward
CHANNELS = ("rgb", "labels", "height")
WATER = 4  # city_regions: ground, road, building, park, water
ONE_HOT = (3, 8)


def test_a_river_one_pixel_wide_is_traced_where_the_block_means_hardly_see_it():
  """A 1-px river down one column of a 4x4-block coarse map: each coarse pixel it crosses holds 1/4 water, the
  trace counts them (1 of 4 columns of each top block), a pixel with less water is not counted."""
  x = -np.ones((8, 8, 8), np.float32)  # coarse map at factor 4: 8x8 pixels, labels in channels 3..7
  x[:, 1, 3 + WATER] = 2 * 0.25 - 1  # a 1-px river across each 4x4 block of column 1
  x[:, 6, 3 + WATER] = 2 * (3 / 16) - 1  # less than a 1-px line: not a river
  t = coarse.trace(x, ONE_HOT, WATER, 4, 4)
  assert t.shape == (2, 2, 1)
  np.testing.assert_allclose(t[..., 0], [[2 * 0.25 - 1, -1.0], [2 * 0.25 - 1, -1.0]])
  plain = coarse.pool(x, 4, ONE_HOT, 1.0)[..., 3 + WATER]
  assert plain.max() < 2 * 0.07 - 1  # the block means: 1/16 water
  # The same map in share_power 0.5's space gives the same trace.
  np.testing.assert_allclose(coarse.trace(coarse.emphasize(x, ONE_HOT, 0.5), ONE_HOT, WATER, 4, 4, 0.5), t, atol=1e-6)
  both = coarse.top_map(x, 4, ONE_HOT, 1.0, (WATER, 4))
  assert both.shape == (2, 2, 9)
  np.testing.assert_allclose(both[..., :8], coarse.pool(x, 4, ONE_HOT, 1.0))  # the top map's own channels
  np.testing.assert_allclose(both[..., 8:], t)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_the_top_maps_drawn_equal_the_coarse_levels_condition_for_the_same_region(power):
  """The top level learns the drawn top maps (the file, its trace read at the coarse factor); the coarse level
  is conditioned on its own coarse map pooled with the trace (``flow_matching_hier.condition``). For one region
  they are the same map, and its trace marks blocks where the plain water share is small."""
  xc, _ = coarse._draw(("city_regions", [7], 256, 4, CHANNELS, None, None))  # 64x64 coarse map at factor 4
  xt, _ = coarse._draw(("city_regions", [7], 256, 16, CHANNELS, (WATER, 4), None))  # 16x16 top map with its trace
  assert xt.shape == (1, 16, 16, 10)  # rgb, 5 label shares, height, the trace
  top = coarse.emphasize(xt[0].astype(np.float32), ONE_HOT, power)  # as HierSource reads it
  cond = fmh.condition(
    jax.random.PRNGKey(0), jnp.asarray(coarse.emphasize(xc.astype(np.float32), ONE_HOT, power)), 4, ONE_HOT, power,
    0.0, 0.0, (WATER, 4),
  )[0]  # fmt: skip
  np.testing.assert_allclose(np.asarray(cond)[::4, ::4], top, atol=4e-3)  # float16 files
  traced = top[..., -1] > -1
  faint = coarse.repower(top, ONE_HOT, power, 1.0)[..., 3 + WATER] < 2 * 0.25 - 1
  assert traced.mean() > 0.1 and (traced & faint).any()


def fake_model():
  """Closed-form levels over two label channels (class 1 traced): top -> N(MU, S^2) in 3 channels; coarse ->
  N(the top map's first 2 channels under it, S^2); fine -> N(coarse map, S^2)."""
  C, CT = 2, 3

  def top_v(params, x, t, label):
    return toward(MU, x, t)

  def coarse_v(params, x, t, label):
    return jnp.concatenate([toward(x[..., C : 2 * C], x[..., :C], t), jnp.zeros_like(x[..., C:])], -1)

  def fine_v(params, x, t, label):
    return jnp.concatenate([toward(x[..., C:], x[..., :C], t), jnp.zeros_like(x[..., C:])], -1)

  hr = fmh.Hier(
    coarse=base.Canvas(coarse_v, 16, C + CT, False, lambda x: x[..., :C], "midpoint", 64),
    fine=base.Canvas(fine_v, 16, 2 * C, False, lambda x: x[..., :C], "midpoint", 64),
    factor=4,
    channels=C,
    one_hot=(0, 2),
    top=base.Canvas(top_v, 16, CT, False, lambda x: x, "midpoint", 64),
    top_factor=16,
    traced=(1, 4),
  )
  fam = base.Family(None, None, None, None, fmh.ROLES, extras={"hier": hr}, canvas=hr.fine)
  return types.SimpleNamespace(family=fam, params=None, config=types.SimpleNamespace(family="flow_matching_hier"))


def test_the_canvas_carries_the_traced_top_map_and_a_sketch_holds_its_trace():
  model = fake_model()
  got = canvas.render_scene(model, 40, 56, seed=3)
  nt = canvas.initial_noise(3, 0, 0, 16, 16, 3, tag=canvas.TOP_TAG)  # the top canvas: 3 channels of noise
  nc = canvas.initial_noise(3, 0, 0, 16, 16, 2, tag=canvas.COARSE_TAG)
  nf = canvas.initial_noise(3, 0, 0, 40, 56, 2)
  xc = (MU + S * nt)[:4, :4, :2].repeat(4, 0).repeat(4, 1) + S * nc
  np.testing.assert_allclose(got, xc[:10, :14].repeat(4, 0).repeat(4, 1) + S * nf, atol=3e-4)
  one = canvas.render_scene(model, 40, 56, seed=3, mesh=parallel.make_mesh(1))
  np.testing.assert_allclose(one, got, atol=1e-5)
  # A given top map must have the trace channel.
  with pytest.raises(ValueError, match=r"top map of shape \(4, 4, 2\): must be \(4, 4, 3\)"):
    canvas.coarse_canvas(model, 40, 56, seed=3, top=np.zeros((4, 4, 2), np.float32))
  # A sketch of class 1 ("water") on columns 0-5, class 0 elsewhere, both label channels kept: at strength 0
  # the top map holds the sketch's trace on the 4x4 blocks it covers whole (rows 0-7, columns 0-11).
  known = -np.ones((10, 14, 2), np.float32)
  known[:, :6, 1], known[:, 6:, 0] = 1.0, 1.0
  sk = sketch.Sketch("s.png", known, np.ones_like(known), "labels")
  kn, kp = np.zeros((16, 16, 2), np.float32), np.zeros((16, 16, 2), np.float32)
  kn[:10, :14], kp[:10, :14] = sk.known, sk.keep
  cpl = canvas.plan(10, 14, 16)
  top = np.asarray(canvas.top_under(model, cpl, 3, 1.0, jnp.int32(0), parallel.local_mesh(), kn, kp, 0.0))
  assert top.shape == (16, 16, 3)
  np.testing.assert_allclose(top[:8:4, :12:4, 2], [[1.0, 2 * 0.5 - 1, -1.0]] * 2, atol=1e-5)  # 4, 2, 0 of 4 cols
  np.testing.assert_allclose(top[:8:4, :12:4, 1], [[1.0, 0.0, -1.0]] * 2, atol=1e-5)  # the water share
  free = (MU + S * nt)[3, :4, 2].repeat(4)  # row 12+: no sketch there
  np.testing.assert_allclose(top[12, :, 2], free, atol=3e-4)


def test_bad_top_trace_values_are_named(data_dir, tmp_path):
  def setup(*o):
    return training.Setup(
      load_config(os.path.join(ROOT, "configs/fm_city_hier.py:smoke"), [f"data.data_dir={data_dir!r}", *o])
    )

  with pytest.raises(ValueError, match=r"hier.top_trace='lava': must be '' \(none\) or one of the world's classes"):
    setup("hier.top_factor=16", "hier.top_trace='lava'")
  with pytest.raises(ValueError, match=r"hier.top_trace='water': for three-level models only"):
    setup("hier.top_trace='water'")
  # A weights file that sets a key the model's config does not have.
  bad = tmp_path / "w.npz"
  np.savez(bad, **{models.CONFIG_KEY: np.array('{"hier.no_such_key": 1}')})
  with pytest.raises(ValueError, match=r"sets 'hier.no_such_key', which fm_city_hier3's config has no key for"):
    models.load("fm_city_hier3", weights=str(bad))
