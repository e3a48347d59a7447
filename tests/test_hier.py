"""Two-level (coarse-to-fine) flow matching: data, the canvas of two levels, sketches, determinism, bad input."""

import json
import os
import subprocess
import sys
import types

import helpers
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from genenv_jax import canvas, large_eval, parallel, sketch, tiling, trained, training
from genenv_jax.config_utils import load_config
from genenv_jax.data import coarse
from genenv_jax.families import base
from genenv_jax.families import flow_matching_hier as fmh
from genenv_jax.layout import Layout
from genenv_jax.scenes import get_world

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MU, S, toward = helpers.MU, helpers.S, helpers.toward


def test_downsample_and_upsample_are_block_means_and_repeats():
  x = np.arange(2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
  d = coarse.downsample(x, 4)
  assert d.shape == (2, 2, 2, 3)
  np.testing.assert_allclose(d[1, 1, 0], x[1, 4:8, 0:4].mean(axis=(0, 1)))
  u = coarse.upsample(d, 4)
  np.testing.assert_array_equal(u[:, 4:8, 0:4], np.broadcast_to(d[:, 1:2, 0:1], (2, 4, 4, 3)))
  with pytest.raises(ValueError, match="multiple of the coarse factor 4"):
    coarse.downsample(x[:, :6], 4)


def test_share_power_pools_label_shares_in_its_own_space():
  rng = np.random.default_rng(0)
  lab = rng.integers(0, 5, (2, 32, 32))
  rgb, h = rng.uniform(-1, 1, (2, 32, 32, 3)), rng.uniform(-1, 1, (2, 32, 32, 1))
  x = np.concatenate([rgb, np.eye(5)[lab] * 2 - 1, h], -1).astype(np.float32)
  oh = (3, 8)
  np.testing.assert_array_equal(coarse.pool(x, 4, oh, 1.0), coarse.downsample(x, 4))  # 1: plain means, as before
  p4 = coarse.pool(x, 4, oh, 0.5)
  np.testing.assert_allclose(p4, coarse.emphasize(coarse.downsample(x, 4), oh, 0.5), atol=1e-6)
  np.testing.assert_allclose(coarse.pool(coarse.pool(x, 2, oh, 0.5), 2, oh, 0.5), p4, atol=1e-6)  # 2 then 2 = 4
  np.testing.assert_allclose(np.asarray(coarse.pool(jnp.asarray(x), 4, oh, 0.5)), p4, atol=1e-6)  # in a step too
  np.testing.assert_array_equal(p4[..., :3], coarse.downsample(x, 4)[..., :3])  # colours and heights: means
  np.testing.assert_array_equal(p4[..., 8:], coarse.downsample(x, 4)[..., 8:])
  np.testing.assert_array_equal(p4[..., 3:8].argmax(-1), coarse.downsample(x, 4)[..., 3:8].argmax(-1))
  back = coarse.repower(p4, oh, 0.5, 1.0)  # the raise undone: plain block means again
  np.testing.assert_allclose(back, coarse.downsample(x, 4), atol=1e-6)
  assert not np.allclose(back, p4, atol=1e-2)
  # a 1-px river across an 8x8 block of ground: share 1/8, read as sqrt(1/8)
  river = np.zeros((8, 8), int)
  river[:, 3] = 4
  one = (np.eye(5)[river] * 2 - 1).astype(np.float32)
  np.testing.assert_allclose(coarse.pool(one, 8, (0, 5), 0.5)[0, 0, 4], 2 * np.sqrt(1 / 8) - 1, atol=1e-6)
  pure = (np.eye(5)[np.full((8, 8), 2)] * 2 - 1).astype(np.float32)  # a sketch's painted block: unchanged
  np.testing.assert_array_equal(coarse.pool(pure, 8, (0, 5), 0.5), coarse.downsample(pure, 8))
  for bad in (0, 1.5, True, "0.5"):
    with pytest.raises(ValueError, match=r"hier.share_power=.*: must be a number in \(0, 1\]"):
      coarse.check_share_power(bad)


def test_coarse_maps_are_the_block_means_of_the_worlds_regions(tmp_path):
  world = get_world("city_regions")
  ch = ("rgb", "labels", "height")
  x, label = coarse.prepare("city_regions", 4, 8, 3, "train", str(tmp_path), ch, workers=1)
  assert x.shape == (3, 8, 8, 9) and x.dtype == np.float16 and label.shape == (3,)
  sc = world.region(coarse.COARSE_SEED + 1, 0, 0, 32, 32)
  lay = Layout.for_data(ch, world)
  want = coarse.downsample(lay.encode(coarse._record(sc))[0], 4)
  np.testing.assert_allclose(x[1], want, atol=2e-3)
  shares = (x[..., 3:8].astype(np.float32) + 1) / 2
  np.testing.assert_allclose(shares.sum(-1), 1.0, atol=5e-3)  # class shares of each block
  again, _ = coarse.prepare("city_regions", 4, 8, 3, "train", str(tmp_path), ch)  # read back, not redrawn
  np.testing.assert_array_equal(again, x)
  test, _ = coarse.prepare("city_regions", 4, 8, 3, "test", str(tmp_path), ch, workers=1)
  assert not np.array_equal(test, x)  # other seeds
  # hier.share_power: the files keep block means; the maps are emphasized as they are read
  src = coarse.HierSource(
    types.SimpleNamespace(class_names=(), num_classes=1, description=""), "city_regions", 4, 8, 3, "train",
    str(tmp_path), ch, shares=((3, 8), 0.5),
  )  # fmt: skip
  want = coarse.emphasize(x.astype(np.float32), (3, 8), 0.5)
  np.testing.assert_allclose(src.coarse.astype(np.float32), want, atol=2e-3)
  assert not np.allclose(src.coarse.astype(np.float32), x.astype(np.float32), atol=1e-2)


def fake_model(C=2, window=16, factor=4, one_hot=(0, 0)):
  """A two-level model whose levels are closed-form fields: coarse -> N(MU, S^2); fine -> N(coarse map, S^2)."""

  def coarse_v(params, x, t, label):
    return toward(MU, x, t)

  def fine_v(params, x, t, label):
    return jnp.concatenate([toward(x[..., C:], x[..., :C], t), jnp.zeros_like(x[..., C:])], -1)

  hr = fmh.Hier(
    coarse=base.Canvas(coarse_v, window, C, False, lambda x: x, "midpoint", 64),
    fine=base.Canvas(fine_v, window, 2 * C, False, lambda x: x[..., :C], "midpoint", 64),
    factor=factor,
    channels=C,
    one_hot=one_hot,
  )
  fam = base.Family(None, None, None, None, fmh.ROLES, extras={"hier": hr}, canvas=hr.fine)
  return types.SimpleNamespace(family=fam, params=None, config=types.SimpleNamespace(family="flow_matching_hier"))


def test_two_level_canvas_carries_the_coarse_map_under_every_window():
  """The coarse canvas (its own noise) lands, repeated up by the factor, under the fine canvas pixel for pixel."""
  model = fake_model()
  got = canvas.render_scene(model, 40, 56, seed=3)
  nc = canvas.initial_noise(3, 0, 0, 16, 16, 2, tag=canvas._TAG + 16)  # the coarse plan: 10x14 -> 16x16
  nf = canvas.initial_noise(3, 0, 0, 40, 56, 2)
  want = (MU + S * nc)[:10, :14].repeat(4, 0).repeat(4, 1) + S * nf
  np.testing.assert_allclose(got, want, atol=2e-4)
  a = canvas.render_scene(model, 40, 56, seed=3, mesh=parallel.make_mesh(1))
  np.testing.assert_allclose(a, got, atol=1e-5)


def test_fine_temperature_scales_only_the_fine_levels_noise_and_is_recorded():
  """``hier.fine_temperature``: the coarse map is drawn as before, the fine level from noise scaled by it (on top
  of the scene's temperature); 1 is bit for bit the model as trained; outputs' sampler names it where not 1."""
  from genenv_jax.synthesis import provenance

  model = fake_model()
  plain = canvas.render_scene(model, 40, 56, seed=3)
  hr = model.family.extras["hier"]
  assert hr.fine_temperature == 1.0 and provenance.sampler_name(model) == "midpoint/64"
  cold = fmh.Hier(**{**hr._asdict(), "fine_temperature": 0.5})
  model.family = model.family._replace(extras={"hier": cold})
  got = canvas.render_scene(model, 40, 56, seed=3, temperature=0.8)
  nc = canvas.initial_noise(3, 0, 0, 16, 16, 2, tag=canvas._TAG + 16)
  nf = canvas.initial_noise(3, 0, 0, 40, 56, 2)
  want = (MU + S * 0.8 * nc)[:10, :14].repeat(4, 0).repeat(4, 1) + S * 0.4 * nf
  np.testing.assert_allclose(got, want, atol=2e-4)
  assert np.abs(got - plain).max() > 0.1
  assert provenance.sampler_name(model) == "midpoint/64 fine_temperature=0.5"
  # Scene caches (tools/large_scenes.py, hier_levels.py, region_picture.py): a colder fine level's kept apart.
  model.params = {"coarse": np.zeros(2, np.float32), "fine": np.ones(3, np.float32)}
  key = large_eval.weights_key(model.params)
  assert large_eval.cache_key(model) == key + "-fine0.5"
  assert large_eval.cache_key(model, model.params["fine"]) == large_eval.weights_key(model.params["fine"]) + "-fine0.5"
  model.family = model.family._replace(extras={"hier": hr})
  assert large_eval.cache_key(model) == key != large_eval.cache_key(model, model.params["fine"])
  # --fine_temperature on a one-level model: refused by name, before anything compiles.
  for extras, canvas_ in (({}, hr.fine), (None, None)):  # a one-level flow matching model; a GAN
    one = types.SimpleNamespace(
      family=base.Family(None, None, None, None, fmh.ROLES, extras=extras, canvas=canvas_),
      config=types.SimpleNamespace(family="flow_matching"),
    )
    with pytest.raises(ValueError, match=r"--fine_temperature=0.5: for hierarchical models only"):
      trained.with_sampler(one, fine_temperature=0.5)
  for bad in (0.0, 1.5, True, "0.5"):
    with pytest.raises(ValueError, match=r"hier.fine_temperature=.*: must be a number in \(0, 1\]"):
      fmh.check_fine_temperature(bad)


def test_the_coarse_level_is_drawn_alone_over_a_given_top_map_and_a_bad_one_named():
  """``canvas.coarse_canvas(top=...)`` (``tools/hier_levels.py``'s ``coarse on real top``): a three-level model's
  coarse canvas over the given top map, repeated up by top_factor / factor, instead of its own top canvas."""
  C = 2
  hr2 = fake_model().family.extras["hier"]
  on_top = lambda p, x, t, l: jnp.concatenate([toward(x[..., C:], x[..., :C], t), jnp.zeros_like(x[..., C:])], -1)  # noqa: E731
  hr = fmh.Hier(
    **{
      **hr2._asdict(),
      "coarse": base.Canvas(on_top, 16, 2 * C, False, lambda x: x[..., :C], "midpoint", 64),
      "top": base.Canvas(lambda p, x, t, l: toward(MU, x, t), 16, C, False, lambda x: x, "midpoint", 64),
      "top_factor": 8,
    }
  )
  model = fake_model()
  model.family = model.family._replace(extras={"hier": hr}, canvas=hr.fine)
  top = np.random.default_rng(0).uniform(-1, 1, (8, 8, C)).astype(np.float32)  # 40x56 -> coarse plan 16x16 -> 8x8
  got = np.asarray(canvas.coarse_canvas(model, 40, 56, seed=3, top=top))
  nc = canvas.initial_noise(3, 0, 0, 16, 16, C, tag=canvas.COARSE_TAG)
  np.testing.assert_allclose(got, (top.repeat(2, 0).repeat(2, 1) + S * nc)[:10, :14], atol=2e-4)
  own = np.asarray(canvas.coarse_canvas(model, 40, 56, seed=3))  # its own top canvas: MU under the coarse map
  nt = canvas.initial_noise(3, 0, 0, 16, 16, C, tag=canvas.TOP_TAG)[:8, :8]
  np.testing.assert_allclose(own, ((MU + S * nt).repeat(2, 0).repeat(2, 1) + S * nc)[:10, :14], atol=2e-4)
  with pytest.raises(ValueError, match=r"top map of shape \(4, 8, 2\): must be \(8, 8, 2\) for a 40x56 scene"):
    canvas.coarse_canvas(model, 40, 56, top=top[:4])
  with pytest.raises(ValueError, match="a top map for a two-level model: it has no top level"):
    canvas.coarse_canvas(fake_model(), 40, 56, top=top)
  # hier.upper_temperature scales the top and the coarse level's noise (not a given top map's), and the fine
  # level's not at all; the server's chunks and the ONNX card are checked with the trained smoke model below.
  warm = hr._replace(upper_temperature=1.5)
  model.family = model.family._replace(extras={"hier": warm}, canvas=warm.fine)
  got = np.asarray(canvas.coarse_canvas(model, 40, 56, seed=3, temperature=0.8))
  want = ((MU + S * 1.2 * nt).repeat(2, 0).repeat(2, 1) + S * 1.2 * nc)[:10, :14]
  np.testing.assert_allclose(got, want, atol=2e-4)
  np.testing.assert_allclose(
    np.asarray(canvas.coarse_canvas(model, 40, 56, seed=3, top=top)),
    (top.repeat(2, 0).repeat(2, 1) + S * 1.5 * nc)[:10, :14],
    atol=2e-4,
  )
  scene = canvas.render_scene(model, 40, 56, seed=3, temperature=0.8)
  nf = canvas.initial_noise(3, 0, 0, 40, 56, C)
  np.testing.assert_allclose(scene, want.repeat(4, 0).repeat(4, 1) + S * 0.8 * nf, atol=4e-4)


def test_upper_temperature_is_checked_recorded_and_kept_apart_in_caches():
  """``hier.upper_temperature``: 1 is bit for bit the model as trained; other values are named in outputs'
  sampler and scene caches, refused outside (0, 2] and on one-level models, by name."""
  from genenv_jax.synthesis import provenance

  model = fake_model()
  plain = canvas.render_scene(model, 40, 56, seed=3, temperature=0.8)
  hr = model.family.extras["hier"]
  assert hr.upper_temperature == 1.0
  same = hr._replace(upper_temperature=1.0, fine_temperature=1.0)
  model.family = model.family._replace(extras={"hier": same})
  np.testing.assert_array_equal(canvas.render_scene(model, 40, 56, seed=3, temperature=0.8), plain)
  both = hr._replace(upper_temperature=1.3, fine_temperature=0.6)
  model.family = model.family._replace(extras={"hier": both})
  assert provenance.sampler_name(model) == "midpoint/64 fine_temperature=0.6 upper_temperature=1.3"
  model.params = {"coarse": np.zeros(2, np.float32), "fine": np.ones(3, np.float32)}
  key = large_eval.weights_key(model.params)
  assert large_eval.cache_key(model) == key + "-fine0.6-upper1.3"
  # The fine level over given coarse maps (tools/hier_levels.py) does not depend on the upper levels' noise.
  assert large_eval.cache_key(model, model.params["fine"]) == large_eval.weights_key(model.params["fine"]) + "-fine0.6"
  one = types.SimpleNamespace(
    family=base.Family(None, None, None, None, fmh.ROLES, extras={}, canvas=hr.fine),
    config=types.SimpleNamespace(family="flow_matching"),
  )
  with pytest.raises(ValueError, match=r"--upper_temperature=1.3: for hierarchical models only"):
    trained.with_sampler(one, upper_temperature=1.3)
  assert fmh.check_upper_temperature(2) == 2.0
  # hier.top_temperature: three levels only (a two-level model has no top level to scale).
  top = hr._replace(top_temperature=1.2)
  model.family = model.family._replace(extras={"hier": top})
  assert provenance.sampler_name(model) == "midpoint/64 top_temperature=1.2"
  assert large_eval.cache_key(model) == key + "-top1.2"
  with pytest.raises(ValueError, match=r"--top_temperature=1.2: for three-level models only \(hier.top_factor > 0\)"):
    trained.with_sampler(types.SimpleNamespace(**{**vars(model), "family": model.family}), top_temperature=1.2)
  assert fmh.check_top_temperature(1, False) == 1.0 and fmh.check_top_temperature(1.3, True) == 1.3
  for bad in (0.0, 2.5, True):
    with pytest.raises(ValueError, match=r"hier.top_temperature=.*: must be a number in \(0, 2\]"):
      fmh.check_top_temperature(bad, True)
  for bad in (0.0, 2.5, -1, True, "1.3"):
    with pytest.raises(ValueError, match=r"hier.upper_temperature=.*: must be a number in \(0, 2\]"):
      fmh.check_upper_temperature(bad)


def test_a_two_level_model_without_velocity_draws_its_noise_and_is_seen_to():
  model = fake_model()
  assert not canvas.zero_velocity(model, None)
  hr = model.family.extras["hier"]
  still = lambda x, t: jnp.zeros_like(x)  # noqa: E731
  zero = fmh.Hier(
    coarse=hr.coarse._replace(velocity=lambda p, x, t, lab: still(x, t)),
    fine=hr.fine._replace(velocity=lambda p, x, t, lab: still(x, t)),
    factor=hr.factor,
    channels=hr.channels,
    one_hot=hr.one_hot,
  )
  model.family = model.family._replace(extras={"hier": zero}, canvas=zero.fine)
  assert canvas.zero_velocity(model, None)
  np.testing.assert_array_equal(canvas.still_scene(model, 40, 56, seed=3), canvas.render_scene(model, 40, 56, seed=3))
  cold = zero._replace(fine_temperature=0.5)  # --fine_temperature: the shortcut scales its noise the same way
  model.family = model.family._replace(extras={"hier": cold}, canvas=cold.fine)
  got = canvas.still_scene(model, 40, 56, seed=3, temperature=0.8)
  np.testing.assert_array_equal(got, canvas.render_scene(model, 40, 56, seed=3, temperature=0.8))
  np.testing.assert_allclose(got, 0.4 * canvas.initial_noise(3, 0, 0, 40, 56, 2), atol=1e-6)


def test_a_sketch_is_held_to_the_end_at_strength_0_and_ignored_at_1():
  model = fake_model()
  sk = helpers.halves_sketch()
  held, free = helpers.assert_sketch_held_at_0_and_ignored_at_1(model, sk)
  half = canvas.render_scene(model, 40, 56, seed=3, sketch=sk, sketch_strength=0.5)
  assert np.abs(half[..., 1] - held[..., 1]).mean() > 0.1 and np.abs(half[..., 1] - free[..., 1]).mean() > 0.1
  left, right = half[:, :28, 1].mean(), half[:, 28:, 1].mean()
  assert right - left > 0.2  # held until t = 0.5, the sketch's two halves still show
  with pytest.raises(ValueError, match=r"sketch_strength=1.5: must be in \[0, 1\]"):
    canvas.render_scene(model, 40, 56, sketch=sk, sketch_strength=1.5)
  with pytest.raises(ValueError, match=r"a sketch for --scene_size=48x56 is 14x12 px"):
    canvas.render_scene(model, 48, 56, sketch=sk)


CITY = get_world("city_regions")
LAYOUT = Layout.for_data(("rgb", "labels", "height"), CITY)


def test_sketches_are_read_by_palette_and_bad_ones_named(tmp_path):
  pal = CITY.palette
  img = np.zeros((4, 6, 3), np.uint8)
  img[:, :3], img[:, 3:] = pal[4], pal[2]  # water | buildings
  Image.fromarray(img).save(tmp_path / "ok.png")
  sk = sketch.load(str(tmp_path / "ok.png"), LAYOUT)
  assert sk.kind == "labels" and sk.known.shape == (4, 6, 9)
  np.testing.assert_array_equal(sk.known[:, :3, 3:8].argmax(-1), 4)
  np.testing.assert_array_equal(sk.keep[..., 3:8], 1)
  np.testing.assert_array_equal(sk.keep[..., :3], 0)
  img[1, 2] = (1, 2, 3)
  Image.fromarray(img).save(tmp_path / "bad.png")
  with pytest.raises(
    ValueError,
    match=r"1 pixels have colours outside the world's palette \(e.g. \[\(1, 2, 3\)\].*"
    r"row 1, column 2\); allowed: ground \(196, 186, 160\)",
  ):
    sketch.load(str(tmp_path / "bad.png"), LAYOUT)
  (tmp_path / "junk.png").write_bytes(b"not a png")
  with pytest.raises(ValueError, match="cannot read it as an image"):
    sketch.load(str(tmp_path / "junk.png"), LAYOUT)
  Image.fromarray(np.full((4, 6), 40000, np.uint16)).save(tmp_path / "h16.png")
  hs = sketch.load(str(tmp_path / "h16.png"), LAYOUT)
  assert hs.kind == "height"
  np.testing.assert_allclose(hs.known[..., 8], 40000 / 65535 * 2 - 1, atol=1e-6)
  rgb_only = Layout.for_data(("rgb",), CITY)
  with pytest.raises(ValueError, match="no height channel; paint classes in the world's palette"):
    sketch.load(str(tmp_path / "h16.png"), rgb_only)
  with pytest.raises(ValueError, match="no label channels; paint a gray"):
    sketch.load(str(tmp_path / "ok.png"), Layout.for_data(("rgb", "height"), CITY))


def test_bad_hier_config_values_are_named(data_dir):
  def cfg(*o):
    return load_config(os.path.join(ROOT, "configs/fm_city_hier.py:smoke"), [f"data.data_dir={data_dir!r}", *o])

  with pytest.raises(ValueError, match=r"hier.factor=3: must be a power of two >= 2"):
    training.Setup(cfg("hier.factor=3"))
  with pytest.raises(ValueError, match=r"hier.factor=32 with data.image_size=16: the size must be a multiple"):
    training.Setup(cfg("hier.factor=32"))
  with pytest.raises(ValueError, match=r"hier.coarse_num_train=0: must be a positive integer"):
    training.Setup(cfg("hier.coarse_num_train=0"))
  with pytest.raises(ValueError, match=r"fm.attention=True: the fine level renders large scenes by windows"):
    training.Setup(cfg("fm.attention=True"))
  with pytest.raises(ValueError, match=r"hier.share_power=0.0: must be a number in \(0, 1\]"):
    training.Setup(cfg("hier.share_power=0.0"))
  with pytest.raises(ValueError, match=r"hier.cond_noise_blocks=1.5: must be a number in \[0, 1\]"):
    training.Setup(cfg("hier.cond_noise_blocks=1.5"))
  with pytest.raises(ValueError, match=r"hier.fine_temperature=0.0: must be a number in \(0, 1\]"):
    training.Setup(cfg("hier.fine_temperature=0.0"))
  with pytest.raises(ValueError, match=r"hier.upper_temperature=3.0: must be a number in \(0, 2\]"):
    training.Setup(cfg("hier.upper_temperature=3.0"))
  with pytest.raises(ValueError, match=r"hier.top_temperature=1.5: for three-level models only"):
    training.Setup(cfg("hier.top_temperature=1.5"))


def test_block_noise_on_the_condition_is_one_draw_per_coarse_pixel():
  """``hier.cond_noise_blocks``: constant on each factor x factor block, different between blocks; 0 draws none
  (the per-pixel noise of ``hier.cond_noise`` is the same key's either way)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
  key = jax.random.key(3)
  clean = coarse.upsample(coarse.pool(x, 4, (0, 0), 1.0), 4)
  np.testing.assert_array_equal(fmh.condition(key, x, 4, (0, 0), 1.0, 0.0), clean)
  d = np.asarray(fmh.condition(key, x, 4, (0, 0), 1.0, 0.0, 0.2) - clean).reshape(2, 4, 4, 4, 4, 3)
  np.testing.assert_allclose(d, np.broadcast_to(d[:, :, :1, :, :1], d.shape), atol=1e-6)  # one value per block
  assert 0.1 < d[:, :, 0, :, 0].std() < 0.3
  pixel = fmh.condition(key, x, 4, (0, 0), 1.0, 0.05)
  both = fmh.condition(key, x, 4, (0, 0), 1.0, 0.05, 0.2)
  np.testing.assert_allclose(np.asarray(both - pixel), d.reshape(2, 16, 16, 3), atol=1e-6)


@pytest.fixture(scope="module")
def hier_workdir(tmp_path_factory, data_dir):
  """The city two-level smoke model, trained 200 steps (fast learning rate, short EMA) so its fine level has
  begun to follow the coarse map, then 20 steps of its coarse level alone."""
  w = str(tmp_path_factory.mktemp("hier"))
  cfg = load_config(
    os.path.join(ROOT, "configs/fm_city_hier.py:smoke"),
    [
      f"data.data_dir={data_dir!r}",
      "train.num_steps=220",
      "hier.fine_steps=200",  # then 20 steps of the coarse level alone
      "train.eval_every=200",
      "train.ckpt_every=200",
      "train.batch_size=16",
      "optim.lr=0.002",
      "optim.warmup_steps=20",
      "fm.ema_decay=0.9",
      "train.feature_net='none'",  # no evaluation at steps 0 and 200: not what these tests read (CI time)
      "mesh.num_devices=1",  # the same steps as on 8 devices (tests/test_families_loop.py), compiled faster
    ],
  )
  training.run(cfg, w)
  return w


def sketch_agreement(labels: np.ndarray, want: np.ndarray, f: int) -> float:
  """Share of the f x f blocks of a label map whose majority class is the sketch's class there."""
  h, w = labels.shape
  votes = np.stack([(labels == k).reshape(h // f, f, w // f, f).sum((1, 3)) for k in range(5)], -1)
  return float((votes.argmax(-1) == want).mean())


@pytest.mark.slow
def test_trained_two_level_model_follows_a_two_class_sketch_and_agrees_on_1_and_8_devices(
  hier_workdir, tmp_path, monkeypatch
):
  model = trained.load(hier_workdir)
  hr = model.family.extras["hier"]
  assert hr.factor == 4 and set(model.params) == {"coarse", "fine"}
  # One scene size throughout: the fine canvas compiles once per mesh (the session's compilation cache).
  one = parallel.make_mesh(1)
  a = canvas.render_scene(model, 64, 64, seed=0, mesh=one)
  b = canvas.render_scene(model, 64, 64, seed=0, mesh=parallel.make_mesh(8))
  np.testing.assert_allclose(a[..., :3], b[..., :3], atol=1e-4)
  assert (a[..., 3:8].argmax(-1) == b[..., 3:8].argmax(-1)).mean() > 0.999
  # The fine level alone over a given coarse map (tools/hier_levels.py): handed the coarse map the model draws
  # itself, it draws the same scene, bit for bit; a map of the wrong size is named.
  xc = np.asarray(canvas.coarse_canvas(model, 64, 64, seed=0, mesh=one))
  assert xc.shape == (16, 16, hr.channels)
  np.testing.assert_array_equal(canvas.render_hier(model, 64, 64, seed=0, mesh=one, coarse=xc), a)
  with pytest.raises(ValueError, match=r"coarse map of shape \(15, 16, 9\): must be \(16, 16, 9\)"):
    canvas.render_hier(model, 64, 64, seed=0, mesh=one, coarse=xc[1:])
  # A two-class sketch (water left, buildings right) at 1/4 of a 64x64 scene, written as sample.py writes it.
  img = np.zeros((16, 16, 3), np.uint8)
  img[:, :8], img[:, 8:] = CITY.palette[4], CITY.palette[2]
  Image.fromarray(img).save(tmp_path / "sketch.png")
  sk = sketch.load(str(tmp_path / "sketch.png"), model.layout)
  out = tmp_path / "scene"
  tiling.write_large_scene(model, str(out), 64, 64, seed=0, sketch=sk, sketch_strength=0.0, progress=False)
  labels = np.asarray(Image.open(out / "scene_labels.png").convert("RGB")).astype(np.int32)
  cls = (labels[:, :, None] == CITY.palette[None, None].astype(np.int32)).all(-1).argmax(-1)
  want = np.where(np.arange(16) < 8, 4, 2)[None, :].repeat(16, 0)
  followed = sketch_agreement(cls, want, 4)
  free = sketch_agreement(b[..., 3:8].argmax(-1), want, 4)
  # 200 smoke steps: the sketch doubles the blocks of its class (0.18 -> 0.37 measured); the :cpu model's
  # agreement is measured by tools/sketch_picture.py (docs/large-scenes.md).
  assert followed > free + 0.1 and followed > 0.3, (followed, free)
  with open(out / "scene.json") as f:
    assert json.load(f)["sketch"]["strength"] == 0.0
  # Served in two levels of chunks: regions agree on overlaps across fine chunk borders and the coarse chunks'
  # border, and are a pure function of coordinates. 64-px chunks here (the server's are 256) for CI time: the
  # fine borders at 256 and 64, the coarse one at 64 coarse px (256 px at factor 4).
  from genenv_jax.exports import onnx_model
  from genenv_jax.server import sources as served

  monkeypatch.setattr(served, "CHUNK", 64)
  src = served.ModelSource(model)
  assert src.info()["editable"] is True and src.info()["unbounded"] is True
  big = src.region(3, 232, 40, 48, 60)
  small = src.region(3, 242, 60, 24, 20)
  for a, b in zip(big, small):
    np.testing.assert_array_equal(a[10:34, 20:40], b)
  # The coarse map steers the fine chunks: the same fine noise under another coarse map draws another region.
  other = served.ModelSource(model)
  other._canvas_fn, other._coarse_fn = src._canvas_fn, src._coarse_fn  # compiled once
  other._coarse_chunks = lambda seed, keys: src._coarse_chunks(seed + 1, keys)
  changed = (other.region(3, 232, 40, 24, 20).labels != big.labels[:24, :20]).mean()
  assert changed > 0.2, changed  # 0.39 measured (200 smoke steps)
  # --upper_temperature reaches the served coarse chunks: as a scene temperature would, bit for bit.
  warm = served.ModelSource(trained.with_sampler(model, upper_temperature=1.5))
  hot = served.ModelSource(model, temperature=1.5)
  for other in (warm, hot):
    other._canvas_fn, other._coarse_fn = src._canvas_fn, src._coarse_fn
  got = warm._coarse_chunks(3, [(0, 0)])[(0, 0)]
  np.testing.assert_array_equal(got, hot._coarse_chunks(3, [(0, 0)])[(0, 0)])
  assert np.abs(got - src._coarse_chunks(3, [(0, 0)])[(0, 0)]).max() > 0.05
  served_sketches(model, src, want, tmp_path)
  # ONNX: two velocity fields and the card's loop between them give the family's own samples.
  card = onnx_model.export(model, str(tmp_path / "onnx"), batch=2, solver="midpoint", steps=4)
  assert card["kind"] == "flow_matching_two_level" and card["factor"] == 4 and "coarse_window" not in card
  key = jax.random.PRNGKey(3)
  kc, kf, _ = jax.random.split(key, 3)
  shape = (model.spec.image_size, model.spec.image_size, hr.channels)

  def noise(k):
    return np.asarray(jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(k, i), shape))(jnp.arange(2)))

  want = np.asarray(model.family.sample(model.params, key, 2, cond=0, solver="midpoint", steps=4))
  got = onnx_model.sample_with_onnx(str(tmp_path / "onnx"), noise(kc), fine_noise=noise(kf))
  np.testing.assert_allclose(got[..., :3], want[..., :3], atol=1e-4)
  assert (got[..., 3:8].argmax(-1) == want[..., 3:8].argmax(-1)).mean() > 0.999
  # A colder fine level (--fine_temperature): the family's samples and the card's loop scale the fine noise alike.
  cold = trained.with_sampler(model, fine_temperature=0.5)
  want_cold = np.asarray(cold.family.sample(cold.params, key, 2, cond=0, solver="midpoint", steps=4))
  assert np.abs(want_cold[..., :3] - want[..., :3]).max() > 0.05
  card_path = tmp_path / "onnx" / "model.json"
  card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "fine_temperature": 0.5}))
  got = onnx_model.sample_with_onnx(str(tmp_path / "onnx"), noise(kc), fine_noise=noise(kf))
  np.testing.assert_allclose(got[..., :3], want_cold[..., :3], atol=1e-4)
  # Warmer upper levels (--upper_temperature): the card the export writes scales the coarse noise as the family does.
  warm = trained.with_sampler(model, upper_temperature=1.5)
  want_warm = np.asarray(warm.family.sample(warm.params, key, 2, cond=0, solver="midpoint", steps=4))
  assert np.abs(want_warm[..., :3] - want[..., :3]).max() > 0.05
  card = onnx_model.export(warm, str(tmp_path / "onnx_warm"), batch=2, solver="midpoint", steps=4)
  assert card["upper_temperature"] == 1.5 and "1.5 * temperature * standard normal" in card["sampler"]["coarse"]
  got = onnx_model.sample_with_onnx(str(tmp_path / "onnx_warm"), noise(kc), fine_noise=noise(kf))
  np.testing.assert_allclose(got[..., :3], want_warm[..., :3], atol=1e-4)
  # sample.py: bad sketches get one line naming what is allowed.
  cmd = [sys.executable, os.path.join(ROOT, "sample.py"), f"--workdir={hier_workdir}", f"--output={tmp_path / 'o'}"]
  r = subprocess.run(
    [*cmd, "--scene_size=48x64", f"--sketch={tmp_path / 'sketch.png'}"], capture_output=True, text=True
  )
  assert r.returncode == 1 and "a sketch for --scene_size=48x64 is 16x12 px" in r.stderr, r.stderr[-500:]
  r = subprocess.run([*cmd, f"--sketch={tmp_path / 'sketch.png'}"], capture_output=True, text=True)
  assert r.returncode == 1 and "give --scene_size=HxW with it" in r.stderr


def served_sketches(model, src, want, tmp_path):
  """POST /api/sketch on the served two-level model (64-px chunks, compiled renderers shared): the sketch is
  followed, nothing far from it changes, it survives a restart, undo restores the bytes, bad ones are named;
  then POST /api/edit inpaints the fine level over the served coarse map."""
  import base64
  import io

  from starlette.testclient import TestClient

  from genenv_jax.server import app as app_lib
  from genenv_jax.server import sources as served

  def client():
    s = served.ModelSource(model)
    s._canvas_fn, s._coarse_fn = src._canvas_fn, src._coarse_fn  # compiled once
    return TestClient(app_lib.make_app(s, str(tmp_path / "edits")))

  def labels(c, y0, x0, n=64):
    r = c.get(f"/api/region?seed=5&y0={y0}&x0={x0}&h={n}&w={n}&layer=labels&format=npy")
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))

  def png(a):
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()

  c = client()
  assert c.get("/api/info").json()["sketch"] == {"factor": 4}
  before, far = labels(c, 0, 0), labels(c, 1024, 1024)
  idx = want.astype(np.uint8).copy()
  idx[:2] = 255  # not painted: the model draws there
  body = {"seed": 5, "y0": 0, "x0": 0, "h": 64, "w": 64, "labels": png(idx), "strength": 0.0}
  r = c.post("/api/sketch", json=body)
  assert r.status_code == 200, r.text
  sid = r.json()["id"]
  after = labels(c, 0, 0)
  followed, free = sketch_agreement(after, want, 4), sketch_agreement(before, want, 4)
  assert followed > free + 0.1 and followed > 0.3, (followed, free)
  np.testing.assert_array_equal(labels(c, 1024, 1024), far)  # far from the sketch: the same bytes
  c = client()  # a restart: the log holds the sketch
  np.testing.assert_array_equal(labels(c, 0, 0), after)
  assert c.get("/api/edits").json()["edits"][0]["op"] == "sketch"
  assert c.delete(f"/api/edit/{sid}").status_code == 200
  np.testing.assert_array_equal(labels(c, 0, 0), before)
  for change, parameter in [
    ({"x0": 2}, "x0"),
    ({"h": 62}, "h"),
    ({"labels": png(idx[:8])}, "labels"),
    ({"labels": png(np.full((16, 16), 9))}, "labels"),
    ({"labels": png(np.full((16, 16), 255))}, "labels"),
    ({"strength": 1.5}, "strength"),
  ]:
    r = c.post("/api/sketch", json=dict(body, **change))
    assert r.status_code == 400 and r.json()["parameter"] == parameter, (change, r.text)
  assert len(c.get("/api/edits").json()["edits"]) == 0  # nothing stored for a refused sketch
  # Edits: the fine ODE inpaints over the served coarse map; only the masked pixels change, painted classes held.
  assert c.get("/api/info").json()["editable"] is True
  rgb = lambda: np.load(io.BytesIO(c.get("/api/region?seed=5&y0=0&x0=0&h=64&w=64&layer=rgb&format=npy").content))  # noqa: E731
  before_rgb = rgb()
  mask = np.zeros((20, 20), np.uint8)
  mask[4:16, 4:16] = 255
  edit = {"seed": 5, "y0": 21, "x0": 13, "h": 20, "w": 20, "mask": png(mask), "labels": 4}
  r = c.post("/api/edit", json=edit)
  assert r.status_code == 200, r.text
  lab2, rgb2 = labels(c, 0, 0), rgb()
  inside = np.zeros((64, 64), bool)
  inside[25:37, 17:29] = True
  np.testing.assert_array_equal(lab2[~inside], before[~inside])
  np.testing.assert_array_equal(rgb2[~inside], before_rgb[~inside])
  assert (lab2[inside] == 4).all() and (rgb2[inside] != before_rgb[inside]).any(-1).mean() > 0.5
  c = client()  # after a restart the patch is read back: the same bytes
  np.testing.assert_array_equal(rgb(), rgb2)
  world = TestClient(app_lib.make_app(served.WorldSource("city_regions"), str(tmp_path / "w")))
  assert world.get("/api/info").json()["sketch"] is None
  assert world.post("/api/sketch", json=body).status_code == 409


def test_the_schedule_starts_again_at_fine_steps_and_old_runs_continue():
  from genenv_jax import families, workdir
  from genenv_jax.families import optim

  cfg = load_config(
    os.path.join(ROOT, "configs/fm_city_hier.py:smoke"),
    ["hier.fine_steps=2", "train.num_steps=6", "optim.warmup_steps=2"],
  )
  # The schedule starts again at fine_steps (warm-up included); Adam's state is the same as without a restart,
  # so a run trained to fine_steps without one (every run before the option) continues as planned.
  sched = []
  for restart in (0, 2):
    tx = optim.make(cfg.optim, 1.0, 6, restart)
    p = {"w": jnp.zeros(())}
    st = tx.init(p)
    assert jax.tree.structure(st) == jax.tree.structure(optim.make(cfg.optim, 1.0, 6).init(p))
    lrs = []
    for _ in range(6):  # with a unit gradient Adam's step is lr (bias-corrected), so the schedule shows
      upd, st = tx.update({"w": jnp.ones(())}, st, p)
      lrs.append(-float(upd["w"]))
    sched.append(np.array(lrs))
  np.testing.assert_allclose(sched[1][2:4], sched[1][:2], rtol=1e-5)  # warm-up again
  assert sched[0][2] > sched[1][2]
  with pytest.raises(ValueError, match=r"hier.fine_steps=-1: must be an integer >= 0"):
    families.make(load_config(os.path.join(ROOT, "configs/fm_city_hier.py:smoke"), ["hier.fine_steps=-1"]),
                  base.DataSpec(16, 9, 1, (3, 8)))  # fmt: skip
  # A stored two-level run from before the option (no fine_steps, 2000 steps) continues under fine_steps=2000
  # and num_steps=5000 (its 2000 steps were the shared ones); fine_steps=1000 would rewrite them: refused.
  theirs = workdir.config_dict(load_config(os.path.join(ROOT, "configs/fm_city_hier.py:cpu")))
  del theirs["hier"]["fine_steps"]
  theirs["train"]["num_steps"] = 2000
  for mine, kept in ((2000, 2000), (0, 0), (1000, 0)):
    assert workdir.with_legacy_defaults(theirs, {"hier": {"fine_steps": mine}})["hier"]["fine_steps"] == kept
  # Runs from before share_power, cond_noise_blocks and fine_temperature had plain block means, per-pixel noise
  # only, and a fine level sampled as trained.
  del theirs["hier"]["share_power"], theirs["hier"]["cond_noise_blocks"], theirs["hier"]["fine_temperature"]
  mine = {"hier": {"share_power": 0.5, "cond_noise_blocks": 0.1, "fine_temperature": 0.7}}
  got = workdir.with_legacy_defaults(theirs, mine)["hier"]
  assert (got["share_power"], got["cond_noise_blocks"], got["fine_temperature"]) == (1.0, 0.0, 1.0)


@pytest.mark.slow
def test_after_fine_steps_only_the_coarse_level_trains(hier_workdir):
  at_200, at_220 = trained.load(hier_workdir, step=200), trained.load(hier_workdir)

  def same(a, b):
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

  assert same(at_200.params["fine"], at_220.params["fine"])  # the EMA weights that sample, bit for bit
  assert not same(at_200.params["coarse"], at_220.params["coarse"])
  with open(os.path.join(hier_workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if '"coarse_loss"' in line and "eval/" not in line]
  early = [r for r in rows if r["step"] <= 200]
  late = [r for r in rows if r["step"] > 200]
  assert early and all(np.isfinite(r["loss"]) for r in early)
  # Coarse-only steps log no fine loss (no NaN for TensorBoard to warn about), only the coarse level's figures.
  assert late and all("loss" not in r and np.isfinite(r["coarse_loss"]) and np.isfinite(r["grad_norm"]) for r in late)
