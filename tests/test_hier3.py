"""Three-level flow matching (``hier.top_factor``): the top map under the coarse canvas, sketches held in both
upper levels, a step that trains the three levels and a phase that keeps the fine one (with ``hier.top_trace``
, ``hier.coarse_window`` and ``hier.coarse_field`` set: one trained smoke model), its ONNX export, bad values
named."""

import json
import os
import shutil
import types

import helpers
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genenv_jax import canvas, parallel, training
from genenv_jax.config_utils import load_config
from genenv_jax.data import coarse
from genenv_jax.families import base
from genenv_jax.families import flow_matching_hier as fmh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MU, S, toward = helpers.MU, helpers.S, helpers.toward
WATER = 4  # city_regions: ground, road, building, park, water


def fake_model(C=2, window=16, factor=4, top_factor=16):
  """Closed-form levels: top -> N(MU, S^2); coarse -> N(top map under it, S^2); fine -> N(coarse map, S^2)."""

  def top_v(params, x, t, label):
    return toward(MU, x, t)

  def follow(params, x, t, label):  # a level over 2C state channels: its own, then the map of the level above
    return jnp.concatenate([toward(x[..., C:], x[..., :C], t), jnp.zeros_like(x[..., C:])], -1)

  hr = fmh.Hier(
    coarse=base.Canvas(follow, window, 2 * C, False, lambda x: x[..., :C], "midpoint", 64),
    fine=base.Canvas(follow, window, 2 * C, False, lambda x: x[..., :C], "midpoint", 64),
    factor=factor,
    channels=C,
    one_hot=(0, 0),
    top=base.Canvas(top_v, window, C, False, lambda x: x, "midpoint", 64),
    top_factor=top_factor,
  )
  fam = base.Family(None, None, None, None, fmh.ROLES, extras={"hier": hr}, canvas=hr.fine)
  return types.SimpleNamespace(family=fam, params=None, config=types.SimpleNamespace(family="flow_matching_hier"))


def test_three_level_canvas_carries_the_top_map_under_the_coarse_one_on_1_and_8_devices():
  """The top canvas (its own noise) lands, repeated up by top_factor/factor, under the coarse canvas, and that
  under the fine one, pixel for pixel; the same scene on 1 and 8 devices."""
  model = fake_model()
  got = canvas.render_scene(model, 40, 56, seed=3)
  # Plans: fine 40x56; coarse 10x14 -> 16x16 (one window); top 4x4 -> 16x16.
  nt = canvas.initial_noise(3, 0, 0, 16, 16, 2, tag=canvas.TOP_TAG)
  nc = canvas.initial_noise(3, 0, 0, 16, 16, 2, tag=canvas.COARSE_TAG)
  nf = canvas.initial_noise(3, 0, 0, 40, 56, 2)
  top = (MU + S * nt)[:4, :4].repeat(4, 0).repeat(4, 1)
  xc = top + S * nc
  want = xc[:10, :14].repeat(4, 0).repeat(4, 1) + S * nf
  np.testing.assert_allclose(got, want, atol=3e-4)
  np.testing.assert_allclose(np.asarray(canvas.coarse_canvas(model, 40, 56, seed=3)), xc[:10, :14], atol=3e-4)
  one = canvas.render_scene(model, 40, 56, seed=3, mesh=parallel.make_mesh(1))
  np.testing.assert_allclose(one, got, atol=1e-5)
  assert len(jax.devices()) == 8
  # The levels stay a pure function of coordinates: a larger scene holds this one in its corner.
  big = canvas.render_scene(model, 72, 88, seed=3)
  np.testing.assert_allclose(big[:40, :56], got, atol=1e-4)


def test_a_sketch_is_held_in_the_top_and_coarse_levels():
  model = fake_model()
  sk = helpers.halves_sketch()
  helpers.assert_sketch_held_at_0_and_ignored_at_1(model, sk)
  # The top map itself holds the sketch's block means on the 4x4 blocks the sketch covers whole (rows 0-7,
  # columns 0-11 of its 10x14 coarse pixels), and draws freely elsewhere.
  known = np.zeros((16, 16, 2), np.float32)
  keep = np.zeros_like(known)
  known[:10, :14], keep[:10, :14] = sk.known, sk.keep
  mesh = parallel.local_mesh()
  cpl = canvas.plan(10, 14, 16)
  top = np.asarray(canvas.top_under(model, cpl, 3, 1.0, jnp.int32(0), mesh, known, keep, 0.0))
  want = coarse.downsample(known[:8, :12], 4)[..., 1]
  np.testing.assert_allclose(top[:8, :12, 1].reshape(2, 4, 3, 4, 1)[:, 0, :, 0, 0], want, atol=1e-5)
  nt = canvas.initial_noise(3, 0, 0, 16, 16, 2, tag=canvas.TOP_TAG)
  np.testing.assert_allclose(top[12:, :, 1], (MU + S * nt)[3, :4, 1].repeat(4)[None].repeat(4, 0), atol=3e-4)


@pytest.fixture(scope="module")
def three_level_setup(data_dir):
  # The upper-level options (hier.top_trace: the top map's trace channel, tests/test_top_trace.py;
  # hier.coarse_window: 32-px coarse windows over 16-px fine ones, tests/test_coarse_window.py; hier.coarse_field:
  # the coarse level draws a river field, tests/test_river_field.py) and a phase of the upper levels alone from
  # step 1: one compiled model checks the step, the phase and the export of all of them.
  return helpers.hier3_smoke_setup(
    data_dir, "hier.fine_steps=1", "hier.top_trace='water'", "hier.coarse_window=32", "hier.coarse_field='water'"
  )  # fmt: skip


def test_a_three_level_step_trains_every_level_and_its_coarse_phase_keeps_the_fine_one(three_level_setup, tmp_path):
  """A traced three-level model with 32-px coarse windows and a river field: the batch holds the drawn traced top
  maps (the world's 256-px regions averaged down by 16, the trace read at the coarse factor) and coarse maps with
  the field's channel, one step trains every level, the top net draws the trace channel and the coarse net the
  field, the phase after ``hier.fine_steps`` keeps the fine level."""
  su = three_level_setup
  hr = su.family.extras["hier"]
  C = hr.channels
  assert hr.top_factor == 16 and (hr.traced, hr.top.channels) == ((WATER, 4), C + 1)
  assert (hr.field, hr.coarse_channels, hr.coarse.channels) == (WATER, C + 1, 2 * C + 2)  # map, field; top map
  assert (hr.coarse.window, hr.fine.window) == (32, 16)
  _, batch = next(iter(su.loader.iterate(0, 1)))
  maps = coarse.prepare(
    "city_regions", 4, 32, 32, "train", su.config.data.data_dir, su.config.data.channels, field="water"
  )[0]  # fmt: skip
  idx = np.asarray(su.loader.indexer.indices(0, su.loader.rows))
  np.testing.assert_allclose(np.asarray(batch["x_coarse"]), maps[idx % 32].astype(np.float32))
  fld = maps[..., C].astype(np.float32)  # the river field's block means: both signs, in [-1, 1]
  assert fld.min() >= -1 and fld.max() <= 1 and (fld > 0).any() and (fld < 0).any()
  tops = coarse.prepare(
    "city_regions", 16, 16, 16, "train", su.config.data.data_dir, su.config.data.channels, traced=(WATER, 4)
  )[0]  # fmt: skip
  np.testing.assert_allclose(np.asarray(batch["x_top"]), tops[idx % 16].astype(np.float32))
  state = su.init_state()
  assert set(state.params) == {"fine", "coarse", "top"}
  v = hr.top.velocity(state.params, jnp.zeros((1, 16, 16, C + 1)), jnp.zeros((1,)), jnp.zeros((1,), jnp.int32))
  assert v.shape == (1, 16, 16, C + 1)  # the top net draws the trace channel too
  v = hr.coarse.velocity(state.params, jnp.zeros((1, 32, 32, 2 * C + 2)), jnp.zeros((1,)), jnp.zeros((1,), jnp.int32))
  assert v.shape == (1, 32, 32, 2 * C + 2)  # the coarse net draws the field (the top map's velocity is 0)
  state0 = jax.device_get(state)  # the steps donate their input state
  joint, m = su.step_fns[0](state, batch)
  joint0 = jax.device_get(joint)
  assert {"loss", "coarse_loss", "top_loss"} <= set(m) and all(np.isfinite(float(m[k])) for k in m)

  def changed(a, b, level):
    return any(not bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a[level]), jax.tree.leaves(b[level])))

  assert all(changed(state0.params, joint0.params, k) for k in ("fine", "coarse", "top"))
  upper, m2 = su.step_fns[1](joint, batch)  # the phase after hier.fine_steps
  joint = joint0
  assert "loss" not in m2 and np.isfinite(float(m2["top_loss"]))
  assert not changed(joint.params, upper.params, "fine") and not changed(joint.ema_params, upper.ema_params, "fine")
  assert changed(joint.params, upper.params, "coarse") and changed(joint.params, upper.params, "top")
  # Single samples (what eval.py scores: top window, coarse window under its centre, fine window under that), as
  # the ONNX loop draws them.
  onnx_gives_the_family_samples(su, upper.ema_params, tmp_path)


def onnx_gives_the_family_samples(su, params, tmp_path):
  """ONNX: three velocity fields (top, coarse over the top map, fine over the coarse map) and the card's loop
  give the family's own samples. The parameters are moved off their near-zero start so every level matters.
  Exported once, with ``--upper_temperature`` and ``--top_temperature`` set (the card scales the noise as the
  family does; the default temperatures' text: tests/test_hier.py's two-level card): ``top.onnx`` draws the
  trace channel and the card says which; ``coarse.onnx`` takes 32-px maps with the river field, the loop carves
  its rivers in (``river_field.carve``, as the card says) and prunes its small water pieces
  (``hier.min_water_blocks``, ``river_field.prune``), and takes the top map's centre 8x8 under the coarse
  window and the coarse map's centre 4x4 under the fine one."""
  from genenv_jax import trained
  from genenv_jax.exports import onnx_model

  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(5), len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.05 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  model = trained.Trained(su.config, su.spec, su.family, params, 1, su.world, "test", su.layout)
  warm = trained.with_sampler(model, upper_temperature=1.5, top_temperature=0.5, min_water_blocks=2000)
  card = onnx_model.export(warm, str(tmp_path / "onnx"), batch=2, solver="midpoint", steps=4)
  C = su.family.extras["hier"].channels
  assert card["kind"] == "flow_matching_three_level" and (card["factor"], card["top_factor"]) == (4, 16)
  assert sorted(os.listdir(tmp_path / "onnx")) == ["coarse.onnx", "fine.onnx", "model.json", "top.onnx"]
  assert (card["upper_temperature"], card["top_temperature"]) == (1.5, 0.5)
  assert "1.5 * 0.5 * temperature * standard normal" in card["sampler"]["top"]
  assert card["top_trace"]["class"] == "water" and card["top_trace"]["channel"] == C
  assert card["networks"]["top"]["outputs"][0]["shape"][-1] == C + 1
  assert card["coarse_window"] == 32 and [i["shape"] for i in card["networks"]["coarse"]["inputs"][:2]] == [
    [2, 32, 32, C + 1],
    [2, 32, 32, C + 1],
  ]
  assert (card["coarse_field"]["class"], card["coarse_field"]["channel"], card["coarse_field"]["river_share"]) == (
    "water",
    C,
    0.5,
  )
  assert "C + 1]); clip to [-1, 1]; carve coarse_field's rivers" in card["sampler"]["coarse"]
  # Pruned after carving, in numpy by the loop, in JAX by the family; the near-random maps hold one piece of water
  # over most of their 32x32 blocks, so 2000 (more than a map has) prunes it: every block's water is moved.
  mw = card["min_water_blocks"]
  assert (mw["class"], mw["min_blocks"], mw["share"]) == ("water", 2000, 0.1) and "prune" in card["sampler"]["coarse"]
  assert card["sampler"]["top_cond"].startswith("top_cond = xt[:, 4:12, 4:12] repeated 4x")
  assert card["sampler"]["cond"].startswith("cond = xc[:, 14:18, 14:18] repeated 4x")
  key = jax.random.PRNGKey(3)
  kc, kf, _ = jax.random.split(key, 3)

  def noise(k, c=C, size=16):
    keys = jnp.arange(2)
    return np.asarray(jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(k, i), (size, size, c)))(keys))

  want = np.asarray(warm.family.sample(params, key, 2, cond=0, solver="midpoint", steps=4))
  assert want.shape == (2, 16, 16, C) and np.isfinite(want).all()
  top_noise = noise(jax.random.fold_in(kc, 1), C + 1)
  got = onnx_model.sample_with_onnx(
    str(tmp_path / "onnx"), noise(kc, C + 1, 32), fine_noise=noise(kf), top_noise=top_noise
  )
  np.testing.assert_allclose(got[..., :3], want[..., :3], atol=1e-4)
  assert (got[..., 3:8].argmax(-1) == want[..., 3:8].argmax(-1)).mean() > 0.999
  # The pruning matters: the same loop with the card's min_water_blocks taken out draws other samples.
  shutil.copytree(tmp_path / "onnx", tmp_path / "unpruned")
  with open(tmp_path / "unpruned" / "model.json") as f:
    plain = json.load(f)
  del plain["min_water_blocks"]
  with open(tmp_path / "unpruned" / "model.json", "w") as f:
    json.dump(plain, f)
  unpruned = onnx_model.sample_with_onnx(
    str(tmp_path / "unpruned"), noise(kc, C + 1, 32), fine_noise=noise(kf), top_noise=top_noise
  )
  assert np.abs(unpruned[..., :3] - got[..., :3]).max() > 1e-3
  # Each level matters: another top noise changes the samples.
  other = onnx_model.sample_with_onnx(
    str(tmp_path / "onnx"), noise(kc, C + 1, 32), fine_noise=noise(kf), top_noise=noise(kf, C + 1)
  )
  assert np.abs(other[..., :3] - got[..., :3]).mean() > 1e-3


def test_bad_top_level_values_are_named(data_dir):
  def setup(*o):
    return training.Setup(
      load_config(os.path.join(ROOT, "configs/fm_city_hier.py:smoke"), [f"data.data_dir={data_dir!r}", *o])
    )

  for bad in ("3", "4", "2", "128"):  # smoke: factor 4, image_size 16 (top_factor/factor must divide 16)
    with pytest.raises(ValueError, match=rf"hier.top_factor={bad}: must be 0 \(two levels\) or a power of two above"):
      setup(f"hier.top_factor={bad}")
  with pytest.raises(ValueError, match=r"hier.top_num_train=0: must be a positive integer"):
    setup("hier.top_factor=16", "hier.top_num_train=0")


def test_the_top_level_takes_its_own_widths_and_bad_ones_are_named(data_dir):
  """``hier.top_widths``: the top U-Net sized apart from the coarse one (which ``hier.coarse_widths`` sizes), so
  a coarse level of another size trains under a kept top level; () keeps both at ``hier.coarse_widths``."""

  def widths(su):  # each level's first convolution's features, from the initialised shapes (nothing compiled)
    x = np.zeros((2, 16, 16, su.spec.channels), np.float32)
    params = jax.eval_shape(su.family.init, jax.random.PRNGKey(0), {"x": x, "label": np.zeros((2,), np.int32)})
    return {k: params.params[k]["params"]["Conv_0"]["kernel"].shape[-1] for k in ("fine", "coarse", "top")}

  assert widths(helpers.hier3_smoke_setup(data_dir)) == {"fine": 8, "coarse": 8, "top": 8}
  got = widths(helpers.hier3_smoke_setup(data_dir, "hier.top_widths=(4, 8, 16)", "hier.coarse_widths=(16, 16)"))
  assert got == {"fine": 8, "coarse": 16, "top": 4}

  def setup(*o):
    return training.Setup(
      load_config(os.path.join(ROOT, "configs/fm_city_hier.py:smoke"), [f"data.data_dir={data_dir!r}", *o])
    )

  with pytest.raises(ValueError, match=r"hier.top_widths=\(8,\): for three-level models"):
    setup("hier.top_widths=(8,)")
  with pytest.raises(ValueError, match=r"hier.top_widths=\(8, 0\): must be \(\) \(hier.coarse_widths\) or positive"):
    setup("hier.top_factor=16", "hier.top_widths=(8, 0)")
  with pytest.raises(ValueError, match=r"hier.top_widths has 5 resolutions: too many for data.image_size=16"):
    setup("hier.top_factor=16", "hier.top_widths=(8, 8, 8, 8, 8)")
  with pytest.raises(ValueError, match=r"hier.coarse_widths has 5 resolutions: too many for data.image_size=16"):
    setup("hier.coarse_widths=(8, 8, 8, 8, 8)")


def served(y0, x0, h, w, seed=3, top=1.0, coarse=1.0):
  """``fake_model``'s scene window at (y0, x0), h x w, in closed form: the top noise repeated up twice plus each
  level's noise (scaled by ``top`` and ``coarse``), keyed by global coordinates."""
  ty, tx = y0 // 16, x0 // 16
  nt = canvas.initial_noise(seed, ty, tx, -(-(y0 + h) // 16) - ty, -(-(x0 + w) // 16) - tx, 2, tag=canvas.TOP_TAG)
  cy, cx = y0 // 4, x0 // 4
  nc = canvas.initial_noise(seed, cy, cx, -(-(y0 + h) // 4) - cy, -(-(x0 + w) // 4) - cx, 2, tag=canvas.COARSE_TAG)
  nf = canvas.initial_noise(seed, y0, x0, h, w, 2)
  ys, xs = np.arange(y0, y0 + h)[:, None], np.arange(x0, x0 + w)[None, :]
  return MU + S * top * nt[ys // 16 - ty, xs // 16 - tx] + S * coarse * nc[ys // 4 - cy, xs // 4 - cx] + S * nf


def test_the_server_serves_three_levels_in_chunks_that_agree_with_the_scene(monkeypatch):
  """Served in chunks (top chunks under coarse chunks under fine ones, each cross-faded over its window), any
  window, negative coordinates included, is the closed form: the top noise repeated up twice plus each level's
  noise, keyed by global coordinates; so chunks agree on overlaps and with ``sample.py``'s canvas."""
  from genenv_jax.server import sources

  monkeypatch.setattr(sources, "CHUNK", 32)
  m = fake_model()
  m.world, m.step, m.workdir, m.scene_classes = None, 0, "closed form", ()
  m.layout = types.SimpleNamespace(class_names=(), palette=np.zeros((1, 3)), channels=("height",))
  src = sources.ModelSource(m)
  y0, x0, h, w = -40, 50, 70, 90
  got = src.tensor(3, y0, x0, h, w)
  np.testing.assert_allclose(got, served(y0, x0, h, w), atol=5e-4)
  np.testing.assert_allclose(src.tensor(3, 0, 64, 20, 30), got[40:60, 14:44], atol=5e-4)  # an overlap
  np.testing.assert_allclose(src.tensor(3, 0, 0, 40, 56), canvas.render_scene(m, 40, 56, seed=3), atol=5e-4)
  # hier.upper_temperature scales the top and coarse noise, hier.top_temperature the top's again; served and drawn
  # alike (sample.py --upper_temperature / --top_temperature).
  hr = m.family.extras["hier"]._replace(upper_temperature=1.5, top_temperature=0.5)
  warm = types.SimpleNamespace(**{**vars(m), "family": m.family._replace(extras={"hier": hr})})
  wsrc = sources.ModelSource(warm)
  got = wsrc.tensor(3, y0, x0, h, w)
  np.testing.assert_allclose(got, served(y0, x0, h, w, top=0.75, coarse=1.5), atol=5e-4)
  np.testing.assert_allclose(wsrc.tensor(3, 0, 0, 40, 56), canvas.render_scene(warm, 40, 56, seed=3), atol=5e-4)
  fam = m.family._replace(extras={"hier": m.family.extras["hier"]._replace(top_factor=24)})
  with pytest.raises(ValueError, match=r"hier.top_factor=24: the server's 32-px coarse chunks .* top_factor / fac"):
    sources.ModelSource(types.SimpleNamespace(**{**vars(m), "family": fam}))


def test_the_server_holds_sketches_and_edits_on_three_levels(monkeypatch):
  """A served three-level model takes sketches (held in the coarse chunks; the top map under them unheld) and
  edits (the fine level inpainted over the served coarse map): closed-form levels over the city's 5 classes."""
  from genenv_jax.layout import Layout
  from genenv_jax.scenes import get_world
  from genenv_jax.server import sources

  monkeypatch.setattr(sources, "CHUNK", 32)

  def served(sketches=()):
    m = fake_model(C=5)
    m.world, m.step, m.workdir, m.scene_classes = None, 0, "closed form", ()
    m.layout = Layout.for_data(("labels",), get_world("city_regions"))
    src = sources.ModelSource(m)
    src.sketches_of = lambda seed: list(sketches)
    return src

  free = served()
  assert free.sketch_info() == {"factor": 4}
  y0, x0, h, w = -24, 8, 64, 72
  idx = np.full((12, 10), 255, np.uint8)  # coarse pixels (-8..3, 1..10); 255: not painted
  idx[2:10, 1:9] = np.arange(8)[:, None] % 5
  held = served([(1, -8, 1, idx, 0.0)]).tensor(3, y0, x0, h, w)
  base_ = free.tensor(3, y0, x0, h, w)
  nf = S * canvas.initial_noise(3, y0, x0, h, w, 5)
  ys, xs = np.arange(y0, y0 + h) // 4 + 8, np.arange(x0, x0 + w) // 4 - 1
  cls = np.full((h, w), 255)
  ok = (ys[:, None] >= 0) & (ys[:, None] < 12) & (xs[None] >= 0) & (xs[None] < 10)
  cls[ok] = idx[np.clip(ys, 0, 11)[:, None], np.clip(xs, 0, 9)[None]][ok]
  on = cls != 255
  assert on.sum() == 8 * 8 * 16
  sk = np.eye(5, dtype=np.float32)[cls[on]] * 2 - 1
  np.testing.assert_allclose(held[on] - nf[on], sk, atol=5e-4)  # strength 0: the coarse map is the sketch
  np.testing.assert_allclose(held[~on], base_[~on], atol=1e-5)  # elsewhere, the top map and all, unchanged
  ignored = served([(1, -8, 1, idx, 1.0)]).tensor(3, y0, x0, h, w)
  np.testing.assert_allclose(ignored, base_, atol=1e-5)
  # An edit: 16x16 window with an 8-px margin; a square in its middle painted water (class 4), the rest kept.
  ctx = free.region(3, 0, 16, 32, 32)
  mask = np.zeros((16, 16), bool)
  mask[4:12, 4:12] = True
  out = free.inpaint(3, 8, 24, ctx, 8, mask, 4)
  assert (out.labels[mask] == 4).all()
  np.testing.assert_array_equal(out.labels[~mask], ctx.labels[8:24, 8:24][~mask])
  assert (ctx.labels[8:24, 8:24][mask] != 4).mean() > 0.5  # it changed something


def test_a_two_level_model_starts_from_the_parameters_it_started_from_before_the_top_level():
  """The top level's option draws no other keys for two levels: ``tools/reproduce.py`` of a committed two-level
  row starts from the same parameters (the fine and coarse U-Nets initialised from ``split(key, 3)[:2]``)."""
  from genenv_jax import families
  from genenv_jax.nets import unet

  cfg = load_config(os.path.join(ROOT, "configs/fm_city_hier.py:smoke"))
  fam = families.make(cfg, base.DataSpec(16, 9, 1, (3, 8)))
  batch = {"x": jnp.zeros((2, 16, 16, 9)), "label": jnp.zeros((2,), jnp.int32)}
  key = jax.random.PRNGKey(7)
  got = jax.jit(fam.init)(key, batch).params
  assert set(got) == {"fine", "coarse"}
  kp, kc, _ = jax.random.split(key, 3)
  net = unet.UNet(9, tuple(cfg.fm.widths), cfg.fm.blocks, False, 1)
  t = jnp.zeros((2,))
  want = {
    "fine": net.init(kp, jnp.zeros((2, 16, 16, 18)), t, batch["label"]),
    "coarse": unet.UNet(9, tuple(cfg.hier.coarse_widths), cfg.fm.blocks, False, 1).init(
      kc, batch["x"], t, batch["label"]
    ),
  }
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
