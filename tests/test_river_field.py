"""``data.river_field``: a signed field whose zero set follows thin water, from labels alone."""

import numpy as np
import pytest

from genenv_jax.data import coarse, river_field
from genenv_jax.scenes import get_world

NAMES = ("ground", "road", "building", "park", "water")
G, R, W = 0, 1, 4


def test_a_river_flips_the_sign_and_a_lake_does_not_cut_the_land():
  lab = np.full((64, 96), G, np.uint8)
  lab[:, 40:42] = W  # a 2-px river, top to bottom
  lab[8:24, 70:90] = W  # a lake on the right bank
  f, odd = river_field.signed_field(lab, NAMES)
  assert odd == 0
  left, right = f[:, :38], f[:, 44:]
  assert (np.sign(left) == np.sign(left[0, 0])).all() and (np.sign(right) == -np.sign(left[0, 0])).all()
  assert f.min() >= -1 and f.max() <= 1 and abs(f[0, 0]) == 1  # saturates 24 px from water
  assert abs(f[:, 40:42]).max() < 0.05  # near 0 on the river
  cross = river_field.crossings(f)
  signs = {float(np.sign(river_field.signed_field(lab, NAMES, seed=s)[0][0, 0])) for s in range(8)}
  assert signs == {-1.0, 1.0}  # the seed draws the sign, not where it changes:
  assert (river_field.crossings(river_field.signed_field(lab, NAMES, seed=3)[0]) == cross).all()
  assert cross[:, 39:42].any(1).all() and not cross[:, :38].any() and not cross[:, 44:].any()
  # Bridged: a road across the river is counted as water (the banks stay apart); a road elsewhere is land.
  lab[30:32, :] = R
  f2, _ = river_field.signed_field(lab, NAMES)
  assert np.sign(f2[0, 0]) != np.sign(f2[0, -1]) and np.sign(f2[31, 0]) == np.sign(f2[0, 0])


def test_a_closed_river_has_opposite_signs_inside_and_out_and_no_loose_ends():
  yy, xx = np.mgrid[:80, :80]
  ring = np.abs(np.hypot(yy - 40, xx - 40) - 20) < 1.2
  lab = np.where(ring, W, G).astype(np.uint8)
  f, odd = river_field.signed_field(lab, NAMES)
  assert odd == 0 and np.sign(f[40, 40]) == -np.sign(f[0, 0])
  c = coarse.downsample(f[..., None], 4)[..., 0]
  cross = river_field.crossings(c)
  from scipy import ndimage

  n = ndimage.label(cross, np.ones((3, 3)))[1]
  assert n == 1  # one closed line at the coarse scale, not pieces


def test_a_real_regions_coarse_crossings_lie_on_its_water_and_bad_input_is_named():
  world = get_world("city_regions")
  sc = world.region(12, 0, 0, 256, 256)
  f, _ = river_field.signed_field(sc.labels, world.class_names)
  c = coarse.downsample(f[..., None], 8)[..., 0]
  wet = coarse.downsample((sc.labels == world.class_names.index("water")).astype(np.float32)[..., None], 8)[..., 0]
  near = wet.copy()
  near[:-1] = np.maximum(near[:-1], wet[1:])
  near[:, :-1] = np.maximum(near[:, :-1], wet[:, 1:])
  cross = river_field.crossings(c)
  assert cross.sum() > 20 and (near[cross] > 0).all()  # 92 crossing blocks measured, every one beside water
  with pytest.raises(ValueError, match=r"class 'river': not one of the world's classes"):
    river_field.signed_field(sc.labels, world.class_names, water="river")
  with pytest.raises(ValueError, match=r"labels of shape \(2, 4, 4\): must be \[H, W\]"):
    river_field.signed_field(np.zeros((2, 4, 4), np.uint8), NAMES)
  with pytest.raises(ValueError, match=r"wide=0"):
    river_field.signed_field(sc.labels, world.class_names, wide=0)
  f_dry, odd = river_field.signed_field(np.zeros((16, 16), np.uint8), NAMES)
  assert odd == 0 and (abs(f_dry) == 1).all() and not river_field.crossings(f_dry).any()


def test_carve_raises_the_class_share_where_the_smoothed_field_changes_sign_and_nowhere_else():
  """A coarse map at factor 8 (labels in channels 3..7 of 9) and a field negative left of column 5, positive
  right of it, with a one-pixel flip in the right half: the smoothed field changes sign only at column 4, where
  water is raised to a 2-px river's share (2/8) and the other shares keep their sum; elsewhere the map is as it
  was; the same in numpy and JAX, and in ``hier.share_power`` 0.5's space."""
  import jax.numpy as jnp

  one_hot = (3, 8)
  rng = np.random.default_rng(0)
  shares = rng.dirichlet(np.ones(5) * [4, 1, 1, 1, 0.05], size=(12, 12)).astype(np.float32)
  x = np.concatenate([rng.uniform(-1, 1, (12, 12, 3)), 2 * shares - 1, rng.uniform(-1, 1, (12, 12, 1))], -1)
  x = x.astype(np.float32)
  field = np.where(np.arange(12) < 5, -0.6, 0.6)[None].repeat(12, 0).astype(np.float32)
  field[6, 9] = -0.6  # grain: one pixel of the other sign, gone after the 3x3 mean
  assert river_field.crossings(field)[6, 8:10].all()  # unsmoothed, it would cut a loop there
  out = river_field.carve(x, field, one_hot, W, 0.25)
  got = (out[..., 3:8] + 1) / 2
  hit = np.zeros((12, 12), bool)
  hit[:, 4] = True
  np.testing.assert_array_equal(river_field.crossings(river_field.smooth(field)), hit)
  np.testing.assert_allclose(out[~hit], x[~hit])
  np.testing.assert_allclose(got[hit][:, W], np.maximum(shares[hit][:, W], 0.25), atol=1e-6)
  np.testing.assert_allclose(got.sum(-1), shares.sum(-1), atol=1e-5)  # the shares still sum to 1
  np.testing.assert_allclose(out[..., :3], x[..., :3])  # colours and height unchanged
  np.testing.assert_allclose(np.asarray(river_field.carve(jnp.asarray(x), jnp.asarray(field), one_hot, W, 0.25)), out,
                             atol=1e-6)  # fmt: skip
  loud = river_field.carve(coarse.emphasize(x, one_hot, 0.5), field, one_hot, W, 0.25, 0.5)
  np.testing.assert_allclose(coarse.repower(loud, one_hot, 0.5, 1.0), out, atol=1e-5)
  with pytest.raises(ValueError, match=r"hier.river_share=0: must be"):
    river_field.check_share(0)


def test_bad_coarse_field_values_are_named(data_dir):
  import os

  from genenv_jax import training
  from genenv_jax.config_utils import load_config

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def setup(*o):
    cfg = os.path.join(root, "configs/fm_city_hier.py:smoke")
    return training.Setup(load_config(cfg, [f"data.data_dir={data_dir!r}", *o]))

  with pytest.raises(ValueError, match=r"hier.coarse_field='lava': must be '' \(none\) or one of the world's classes"):
    setup("hier.coarse_field='lava'")
  with pytest.raises(ValueError, match=r"hier.coarse_field='water': needs the 'labels' channels"):
    setup("hier.coarse_field='water'", "data.channels=('rgb', 'height')")


def test_a_field_model_is_served_in_chunks_that_agree_with_the_scene_with_its_rivers_carved(monkeypatch):
  """Closed-form levels over two label classes (class 1 water): the coarse level draws shares around (0.75, 0.1) and a
  N(0, S^2) river field, the fine level N(coarse map, S^2). The scene's coarse map is carved where the smoothed
  field changes sign (``canvas.render_scene``, the whole coarse canvas at once); the server, which carves each
  assembled coarse map over a ring, serves the same away from the scene's edges, and any window
  alike on overlaps, negative coordinates included."""
  import types

  import helpers
  import jax.numpy as jnp

  from genenv_jax import canvas
  from genenv_jax.families import base
  from genenv_jax.families import flow_matching_hier as fmh
  from genenv_jax.server import sources

  monkeypatch.setattr(sources, "CHUNK", 32)
  C, target = 2, jnp.array([helpers.MU, -0.8, 0.0])  # little water: a share of 0.1

  def coarse_v(params, x, t, label):
    return helpers.toward(target, x, t)

  def fine_v(params, x, t, label):
    return jnp.concatenate([helpers.toward(x[..., C:], x[..., :C], t), jnp.zeros_like(x[..., C:])], -1)

  def model(carve=True):
    def finalize(x):
      x = jnp.clip(x, -1.0, 1.0)
      return river_field.carve(x[..., :C], x[..., C], (0, C), 1, 0.5) if carve else x[..., :C]

    hr = fmh.Hier(
      coarse=base.Canvas(coarse_v, 16, C + 1, False, finalize, "midpoint", 64),
      fine=base.Canvas(fine_v, 16, 2 * C, False, lambda x: x[..., :C], "midpoint", 64),
      factor=4, channels=C, one_hot=(0, C), field=1,
    )  # fmt: skip
    fam = base.Family(None, None, None, None, fmh.ROLES, extras={"hier": hr}, canvas=hr.fine)
    m = types.SimpleNamespace(family=fam, params=None, config=types.SimpleNamespace(family="flow_matching_hier"))
    m.world, m.step, m.workdir, m.scene_classes = None, 0, "closed form", ()
    m.layout = types.SimpleNamespace(class_names=(), palette=np.zeros((1, 3)), channels=("height",))
    return m

  m, plain = model(), model(carve=False)
  scene = canvas.render_scene(m, 64, 72, seed=3)
  unc = canvas.render_scene(plain, 64, 72, seed=3)  # the same noise, nothing carved
  nf = helpers.S * canvas.initial_noise(3, 0, 0, 64, 72, C)
  water = (scene - nf)[..., 1] - (unc - nf)[..., 1]  # the coarse map's water channel, carved minus not
  assert (water > 1e-3).mean() > 0.05 and (water >= -1e-5).all()  # rivers carved in, nowhere less water
  # Scene caches keep river shares apart (a sampling key: the same parameters, other scenes).
  from genenv_jax import large_eval

  m.params = plain.params = {"w": np.zeros(3, np.float32)}
  hr = m.family.extras["hier"]
  other = types.SimpleNamespace(
    **{**vars(m), "family": m.family._replace(extras={"hier": hr._replace(river_share=0.25)})}
  )
  assert large_eval.cache_key(m).endswith("-river0.5") and large_eval.cache_key(other).endswith("-river0.25")
  src = sources.ModelSource(m)
  # A scene's 2 coarse pixels (8 px) along its edges are carved from the scene alone (edges repeated); the server
  # carves them with the world beyond. Everywhere else they agree.
  np.testing.assert_allclose(src.tensor(3, 0, 0, 64, 72)[8:-8, 8:-8], scene[8:-8, 8:-8], atol=5e-4)
  got = src.tensor(3, -40, 20, 70, 60)
  np.testing.assert_allclose(src.tensor(3, 0, 40, 20, 30), got[40:60, 20:50], atol=5e-4)  # an overlap
  # A sketch at strength 0 holds the map's label channels; the field is drawn freely under it and its rivers
  # carved into the sketch (water raised to 1/2 on a sign change, never lowered).
  from genenv_jax import sketch

  known = -np.ones((16, 18, C), np.float32)
  known[:, :9, 0], known[:, 9:, 1] = 1.0, 1.0  # class 0 left, water right
  sk = sketch.Sketch("s.png", known, np.ones_like(known), "labels")
  held = canvas.render_scene(m, 64, 72, seed=3, sketch=sk, sketch_strength=0.0) - nf
  want = np.repeat(np.repeat(known, 4, 0), 4, 1)
  np.testing.assert_allclose(held[:, 36:], want[:, 36:], atol=5e-4)  # water already: nothing to carve
  left = held[:, :36]
  carved = np.abs(left[..., 1] + 1) > 1e-3
  assert 0 < carved.mean() < 0.5 and np.allclose(left[carved], [0.0, 0.0], atol=5e-4)  # shares 1/2, 1/2
  np.testing.assert_allclose(left[~carved], want[:, :36][~carved], atol=5e-4)


def test_prune_gives_small_water_pieces_to_the_other_classes_and_keeps_large_ones():
  """``hier.min_water_blocks``: on a coarse map (labels in channels 1..3 of 4, water last) with water pieces of 1,
  2 and 5 blocks (shares at least 0.1) and faint water (0.05) elsewhere, min_blocks 3 takes the water out of the
  1- and 2-block pieces, the other classes scaled up to keep each block's sum, and leaves the 5-block piece, the
  faint water, a block of water alone and every other channel as they were; numpy = JAX, in share_power 0.5's
  space too; component sizes agree with scipy's on random masks."""
  import jax
  import jax.numpy as jnp

  one_hot, k = (1, 4), 2
  w = np.full((10, 12), 0.05, np.float32)
  w[1, 1] = 0.5  # one block
  w[4, 4:6] = 0.3  # two blocks
  w[7, 2:7] = 0.6  # five blocks
  w[1, 9] = 1.0  # a block of water alone: no other class to give it to
  rng = np.random.default_rng(1)
  split = rng.uniform(0.2, 0.8, w.shape).astype(np.float32)
  shares = np.stack([(1 - w) * split, (1 - w) * (1 - split), w], -1)
  x = np.concatenate([rng.uniform(-1, 1, (10, 12, 1)), 2 * shares - 1, rng.uniform(-1, 1, (10, 12, 1))], -1)
  x = x.astype(np.float32)
  out = river_field.prune(x, one_hot, k, 3)
  got = (out[..., 1:4] + 1) / 2
  gone = np.zeros(w.shape, bool)
  gone[1, 1] = gone[4, 4] = gone[4, 5] = True
  np.testing.assert_allclose(got[gone][:, k], 0.0, atol=1e-6)
  np.testing.assert_allclose(got.sum(-1), shares.sum(-1), atol=1e-5)
  np.testing.assert_allclose(got[gone][:, 0] / got[gone][:, 1], split[gone] / (1 - split[gone]), rtol=1e-4)
  np.testing.assert_allclose(out[~gone], x[~gone], atol=1e-6)  # the 5-block piece, faint water, the lone block
  np.testing.assert_allclose(out[..., [0, 4]], x[..., [0, 4]])
  jit = jax.jit(lambda x: river_field.prune(x, one_hot, k, 3))
  np.testing.assert_allclose(np.asarray(jit(jnp.asarray(x))), out, atol=1e-6)
  loud = river_field.prune(coarse.emphasize(x, one_hot, 0.5), one_hot, k, 3, 0.5)
  np.testing.assert_allclose(coarse.repower(loud, one_hot, 0.5, 1.0), out, atol=1e-5)
  assert river_field.prune(x, one_hot, k, 1) is x and river_field.prune(x, one_hot, k, 0) is x
  np.testing.assert_allclose(river_field.prune(x, one_hot, k, 6)[7, 2:7, 1:4], (2 * np.stack(
    [shares[7, 2:7, 0] / 0.4, shares[7, 2:7, 1] / 0.4, 0 * shares[7, 2:7, 2]], -1) - 1), atol=1e-5)  # fmt: skip
  for p in (0.2, 0.5, 0.7):  # the JAX components (propagation to a fixed point) are scipy's
    m = rng.random((3, 23, 31)) < p
    np.testing.assert_array_equal(np.asarray(jax.jit(river_field.component_sizes)(jnp.asarray(m))),
                                  river_field.component_sizes(m))  # fmt: skip


def test_bad_min_water_blocks_are_named(data_dir):
  import os

  from genenv_jax import training
  from genenv_jax.config_utils import load_config

  for bad in (-1, 2.5, True, "3"):
    with pytest.raises(ValueError, match=r"min_water_blocks=.*: must be an int >= 0"):
      river_field.check_min_blocks(bad)
  with pytest.raises(ValueError, match=r"prunes the 'water' class, which this world's classes \['sand', 'rock'\]"):
    river_field.check_prune_class(("sand", "rock"))
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  cfg = os.path.join(root, "configs/fm_city_hier.py:smoke")
  with pytest.raises(ValueError, match=r"hier.min_water_blocks=-2: must be an int >= 0"):
    training.Setup(load_config(cfg, [f"data.data_dir={data_dir!r}", "hier.min_water_blocks=-2"]))


def test_a_pruned_model_is_served_in_chunks_that_agree_with_the_scene(monkeypatch):
  """``hier.min_water_blocks`` 3 on closed-form levels over two classes (class 1 water, its share around 0.1, so
  the drawn coarse map has water pieces of every size): the scene's coarse map (``canvas.render_scene``, pruned
  whole) holds no piece of fewer than 3 blocks away from its edges where the unpruned one has many; the server,
  which prunes each assembled coarse map over a ring of ``Hier.ring`` = 2 pixels, serves the same away from the
  scene's edges, and any window alike on overlaps; scene caches keep the pruned scenes apart."""
  import types

  import helpers
  import jax.numpy as jnp

  from genenv_jax import canvas, large_eval, sketch
  from genenv_jax.families import base
  from genenv_jax.families import flow_matching_hier as fmh
  from genenv_jax.layout import Layout
  from genenv_jax.server import sources

  monkeypatch.setattr(sources, "CHUNK", 32)
  C, target = 2, jnp.array([helpers.MU, -0.8])  # water's share around 0.1, N(0.1, 0.15^2) per block

  def coarse_v(params, x, t, label):
    return helpers.toward(target, x, t)

  def fine_v(params, x, t, label):
    return jnp.concatenate([helpers.toward(x[..., C:], x[..., :C], t), jnp.zeros_like(x[..., C:])], -1)

  def model(n):
    hr = fmh.Hier(
      coarse=None, fine=base.Canvas(fine_v, 16, 2 * C, False, lambda x: x[..., :C], "midpoint", 64),
      factor=4, channels=C, one_hot=(0, C), prune_class=1, min_water_blocks=n,
    )  # fmt: skip
    hr = hr._replace(coarse=base.Canvas(coarse_v, 16, C, False, lambda x: hr.carve(jnp.clip(x, -1, 1)), "midpoint", 64))
    fam = base.Family(None, None, None, None, fmh.ROLES, extras={"hier": hr}, canvas=hr.fine)
    m = types.SimpleNamespace(family=fam, params={"w": np.zeros(3, np.float32)})
    m.config = types.SimpleNamespace(family="flow_matching_hier")
    m.world, m.step, m.workdir, m.scene_classes = None, 0, "closed form", ()
    m.layout = Layout(("labels",), ("ground", "water"), np.array([[200, 200, 200], [0, 0, 255]], np.uint8))
    return m

  m, plain = model(3), model(0)
  assert m.family.extras["hier"].ring == 2 and plain.family.extras["hier"].ring == 0
  nf = helpers.S * canvas.initial_noise(3, 0, 0, 64, 72, C)

  def pieces(mm):  # sizes of the coarse water pieces wholly inside the scene's interior
    from scipy import ndimage

    wet = (canvas.render_scene(mm, 64, 72, seed=3) - nf)[::4, ::4, 1] >= 2 * river_field.PRUNE_SHARE - 1 - 1e-4
    comp, k = ndimage.label(wet, river_field._FOUR)
    edge = set(comp[[0, -1]].ravel()) | set(comp[:, [0, -1]].ravel())
    return [int((comp == i).sum()) for i in range(1, k + 1) if i not in edge]

  before, after = pieces(plain), pieces(m)
  assert sum(s < 3 for s in before) >= 5 and len(after) and min(after) >= 3
  assert large_eval.cache_key(m).endswith("-prune3") and "prune" not in large_eval.cache_key(plain)
  scene = canvas.render_scene(m, 64, 72, seed=3)
  src = sources.ModelSource(m)
  # Along the scene's edges (2 coarse pixels, 8 px) a piece is measured within the scene alone; elsewhere equal.
  np.testing.assert_allclose(src.tensor(3, 0, 0, 64, 72)[8:-8, 8:-8], scene[8:-8, 8:-8], atol=5e-4)
  got = src.tensor(3, -40, 20, 70, 60)
  np.testing.assert_allclose(src.tensor(3, 0, 40, 20, 30), got[40:60, 20:50], atol=5e-4)  # an overlap
  # A sketch at strength 0.5 paints one block of water on dry land (a coarse pixel dry with its 4 neighbours): its
  # piece, one block with a share the model redrew, would be pruned, and is kept because the sketch holds it;
  # served alike.
  dry = (scene - nf)[::4, ::4, 1] < 2 * river_field.PRUNE_SHARE - 1
  alone = dry[3:-3, 3:-3] & dry[2:-4, 3:-3] & dry[4:-2, 3:-3] & dry[3:-3, 2:-4] & dry[3:-3, 4:-2]
  ci, cj = (int(v) + 3 for v in np.argwhere(alone)[0])
  idx = np.full((16, 18), sketch.FREE, np.uint8)
  idx[ci, cj] = 1
  sk = sketch.from_classes(idx, m.layout)
  drawn = canvas.render_scene(m, 64, 72, seed=3, sketch=sk, sketch_strength=0.5)
  assert 2 * river_field.PRUNE_SHARE - 1 < (drawn - nf)[4 * ci, 4 * cj, 1] < 0.99  # painted, partly redrawn, kept
  src.sketches_of = lambda seed: [(1, ci, cj, idx[ci : ci + 1, cj : cj + 1], 0.5)]
  np.testing.assert_allclose(src.tensor(3, 0, 0, 64, 72)[8:-8, 8:-8], drawn[8:-8, 8:-8], atol=5e-4)
