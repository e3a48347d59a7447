"""``hier.coarse_window``: the coarse level trains on, and draws with, windows wider than the fine level's: the
canvas evaluates the coarse level on windows of that size and the scene is unchanged for a per-pixel field, the
training batch holds the wider maps, and bad values are named. (The trained smoke model with a wider window,
its step and ONNX export: tests/test_hier3.py.)"""

import os

import helpers
import jax
import numpy as np
import pytest
from test_hier3 import fake_model, served

from genenv_jax import canvas, large_eval, parallel, training
from genenv_jax.config_utils import load_config
from genenv_jax.data import coarse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MU, S = helpers.MU, helpers.S


def wide(model, window: int):
  """``model`` with its coarse level drawn on ``window``-px windows; the windows it is evaluated on are recorded."""
  hr = model.family.extras["hier"]
  seen, velocity = [], hr.coarse.velocity

  def v(params, x, t, label):
    seen.append(tuple(x.shape[1:3]))
    return velocity(params, x, t, label)

  hr = hr._replace(coarse=hr.coarse._replace(velocity=v, window=window))
  model.family = model.family._replace(extras={"hier": hr})
  return model, seen


def test_the_coarse_canvas_is_drawn_on_its_own_wider_windows_and_the_scene_is_the_same():
  """A 32-px coarse window over a 16-px fine one: the coarse level sees only 32-px windows (its plan 32x32),
  and for the closed-form levels (a per-pixel field, so the window does not matter) the scene is pixel for
  pixel the one drawn with 16-px coarse windows, on 1 and 8 devices."""
  narrow = canvas.render_scene(fake_model(), 40, 56, seed=3)
  model, seen = wide(fake_model(), 32)
  got = canvas.render_scene(model, 40, 56, seed=3)
  assert seen and set(seen) == {(32, 32)}
  np.testing.assert_allclose(got, narrow, atol=1e-5)
  # The closed form (tests/test_hier3.py's): the coarse noise over the wider plan is keyed by coordinates.
  nt = canvas.initial_noise(3, 0, 0, 16, 16, 2, tag=canvas.TOP_TAG)
  nc = canvas.initial_noise(3, 0, 0, 32, 32, 2, tag=canvas.COARSE_TAG)
  xc = (MU + S * nt)[:8, :8].repeat(4, 0).repeat(4, 1) + S * nc
  np.testing.assert_allclose(np.asarray(canvas.coarse_canvas(model, 40, 56, seed=3)), xc[:10, :14], atol=3e-4)
  one = canvas.render_scene(model, 40, 56, seed=3, mesh=parallel.make_mesh(1))
  np.testing.assert_allclose(one, got, atol=1e-5)
  assert len(jax.devices()) == 8
  # Scene caches keep the two apart: the same parameters, other coarse windows.
  assert large_eval.cache_key(model) == large_eval.cache_key(fake_model()) + "-cw32"


def test_the_batch_holds_coarse_maps_of_the_wider_window(data_dir):
  """With ``hier.coarse_window=32`` (smoke: 16-px windows, factor 4) the loader hands the step 32-px coarse maps
  of 128-px regions, row i the drawn map i mod n; the top maps stay 16 px."""
  su = helpers.hier3_smoke_setup(data_dir, "hier.coarse_window=32")
  hr = su.family.extras["hier"]
  assert (hr.coarse.window, hr.fine.window, hr.top.window) == (32, 16, 16)
  raw = su.loader.host_batch(0)
  assert raw["x_coarse"].shape == (8, 32, 32, raw["x"].shape[-1]) and raw["x_top"].shape[1:3] == (16, 16)
  maps = coarse.prepare("city_regions", 4, 32, 32, "train", su.config.data.data_dir, ("rgb", "labels", "height"))[0]
  idx = np.asarray(su.loader.indexer.indices(0, su.loader.rows))
  np.testing.assert_allclose(raw["x_coarse"], maps[idx % 32].astype(np.float32))
  assert "128-px regions" in su.loader.source.description


@pytest.mark.parametrize(
  "bad, allowed",
  [
    ("20", "a multiple of 8 from 16 and at most 64"),
    ("8", "a multiple of 8 from 16 and at most 64"),
    ("72", "a multiple of 8 from 16 and at most 64"),
  ],
)
def test_bad_coarse_windows_are_named(data_dir, bad, allowed):
  cfg = load_config(
    os.path.join(ROOT, "configs/fm_city_hier.py:smoke"),
    [f"data.data_dir={data_dir!r}", "hier.top_factor=16", f"hier.coarse_window={bad}"],
  )
  with pytest.raises(ValueError, match=rf"hier.coarse_window={bad}: must be 0 \(data.image_size=16\) or {allowed}"):
    training.Setup(cfg)


def test_a_two_level_coarse_window_has_no_top_bound():
  coarse.check_coarse_window(128, 16, 0, 4, 2)
  with pytest.raises(ValueError, match=r"hier.coarse_window=12: must be 0 \(data.image_size=16\) or a multiple of 8"):
    coarse.check_coarse_window(12, 16, 0, 4, 2)


def test_the_server_serves_a_wider_coarse_window_in_chunks_that_agree_with_the_scene(monkeypatch):
  """The server's coarse chunks are drawn on 32-px windows (their margin is the coarse window): any window is the
  closed form of tests/test_hier3.py's server test, and agrees with ``sample.py``'s canvas."""
  import types

  from genenv_jax.server import sources

  monkeypatch.setattr(sources, "CHUNK", 32)
  m, seen = wide(fake_model(), 32)
  m.world, m.step, m.workdir, m.scene_classes = None, 0, "closed form", ()
  m.layout = types.SimpleNamespace(class_names=(), palette=np.zeros((1, 3)), channels=("height",))
  src = sources.ModelSource(m)
  y0, x0, h, w = -40, 50, 70, 90
  got = src.tensor(3, y0, x0, h, w)
  assert seen and set(seen) == {(32, 32)}
  np.testing.assert_allclose(got, served(y0, x0, h, w), atol=5e-4)
  np.testing.assert_allclose(src.tensor(3, 0, 0, 40, 56), canvas.render_scene(m, 40, 56, seed=3), atol=5e-4)
