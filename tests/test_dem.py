"""One elevation model cut into windows: 16-bit heights end to end, the region split, errors named."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from genenv_jax import exports, layout, pngstream
from genenv_jax.config_utils import load_config, validate
from genenv_jax.data import dem, sources
from genenv_jax.exports.scene import ExportScene

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_dem(path, h=96, w=120, seed=0):
  """Metres 300..1000 with centimetre ripples: 8 bits (2.7 m steps) would lose them, 16 bits (1 cm) keep them."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:h, 0:w]
  z = 650 + 300 * np.sin(x / 17.0) * np.cos(y / 23.0) + 0.05 * rng.standard_normal((h, w))
  z[0, 0], z[-1, -1] = 300.0, 1000.0
  np.save(path, z)
  return z


def cfg(path, *more, channels=("height",)):
  return load_config(
    os.path.join(ROOT, "configs/fm_folder.py:smoke"), [f"data.path={str(path)!r}", f"data.channels={channels!r}", *more]
  )


def test_heights_survive_16_bits_from_the_dem_to_the_engine_export(tmp_path):
  z = write_dem(tmp_path / "dem.npy")
  c = cfg(tmp_path / "dem.npy", "data.image_size=16", "data.stride=16", "data.metres_per_pixel=30.0")
  src = sources.make_source(c.data, "train")
  lo, hi = src.height_range_m
  assert (lo, hi) == (300.0, 1000.0) and src.metres_per_pixel == 30.0
  rec = src.get([0, 1])
  assert rec["height"].dtype == np.uint16
  # Data: the records are the DEM's windows at 16 bits (window 0 at the top-left, window 1 one stride right).
  np.testing.assert_array_equal(rec["height"][1], np.round((z[:16, 16:32] - lo) / (hi - lo) * 65535))
  # Model scaling and records: encode -> [-1, 1] -> records again is exact at 16 bits.
  lay = layout.Layout(("height",))
  x = lay.encode(rec)
  back = {k: np.asarray(v) for k, v in lay.to_records(jnp.asarray(x)).items()}
  np.testing.assert_array_equal(back["height"], rec["height"])
  step = (hi - lo) / 65535
  metres = lo + lay.decode(x)["height"] * (hi - lo)
  assert np.abs(metres[1] - z[:16, 16:32]).max() <= step  # within one 16-bit step of the metres
  # Export: a 33x33 Unity heightmap of the decoded heights with the DEM's base elevation, read back in metres.
  h = np.zeros((33, 33), np.float32)
  h[:16, :16], h[:16, 16:32] = lay.decode(x)["height"]
  scene = ExportScene(np.zeros((33, 33, 3), np.uint8), None, h, "", (), layout.NO_PALETTE, 30.0, hi - lo, "t", lo)
  exports.export(scene, str(tmp_path / "out"), ["unity"], {"t": 1})
  side = json.load(open(tmp_path / "out" / "unity" / "unity.json"))
  assert side["base_elevation_m"] == pytest.approx(lo)
  raw = np.fromfile(tmp_path / "out" / "unity" / "terrain.raw", "<u2").reshape(33, 33)
  got = np.flipud(raw) * side["height_step_m"] + side["min_height_m"]
  assert np.abs(got[:16, 16:32] - z[:16, 16:32]).max() <= 2 * step  # two roundings: records, then the export


def test_a_dem_is_split_by_region_so_no_test_window_touches_a_training_window(tmp_path, caplog):
  write_dem(tmp_path / "dem.npy", h=64, w=200)
  c = cfg(tmp_path / "dem.npy", "data.image_size=16", "data.stride=4", "data.test_fraction=0.2")
  with caplog.at_level("WARNING"):
    train, test = sources.make_source(c.data, "train"), sources.make_source(c.data, "test")
  assert "does not give its ground resolution" in caplog.text and "data.metres_per_pixel=M" in caplog.text
  xs_train, xs_test = dem._columns(200, 16, 4, 0.2)
  assert max(xs_train) + 16 <= min(xs_test) and min(xs_test) == 160 and max(xs_test) == 184
  assert len(train) == len(range(0, 49, 4)) * len(xs_train) and len(test) == 13 * len(xs_test)
  assert "the last 40 columns" in test.description and "the first 160 columns" in train.description
  # A 64-px window averaged down to the 16-px model: 4x4 block means, pixels 4x as large.
  c = cfg(tmp_path / "dem.npy", "data.image_size=16", "data.window=64", "data.metres_per_pixel=10.0")
  src = sources.make_source(c.data, "train")
  assert src.get([0])["height"].shape == (1, 16, 16) and src.metres_per_pixel == 40.0


def test_dem_settings_are_checked_by_name(tmp_path):
  write_dem(tmp_path / "dem.npy", h=40, w=40)
  with pytest.raises(ValueError, match=r"holds heights only; use data.channels=\"\('height',\)\""):
    validate(cfg(tmp_path / "dem.npy", channels=("rgb", "height")))
  with pytest.raises(ValueError, match=r"data.window=8: must be at least data.image_size=16"):
    validate(cfg(tmp_path / "dem.npy", "data.image_size=16", "data.window=8"))
  with pytest.raises(ValueError, match=r"data.stride=-1: must be a whole number"):
    validate(cfg(tmp_path / "dem.npy", "data.stride=-1"))
  os.makedirs(tmp_path / "imgs")
  Image.fromarray(np.zeros((8, 8, 3), np.uint8) + 5).save(tmp_path / "imgs" / "a.png")
  with pytest.raises(ValueError, match=r"heights alone come from one elevation model file"):
    validate(cfg(tmp_path / "imgs"))
  with pytest.raises(ValueError, match=r"the DEM is 40 px wide: too narrow for a 32-px training window"):
    sources.make_source(cfg(tmp_path / "dem.npy", "data.image_size=32").data, "train")


def test_a_heights_only_layout_pictures_its_heights_in_gray():
  lay = layout.Layout(("height",))
  x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 4, 4, 1)
  d = lay.decode(x)
  assert d["rgb"].shape == (1, 4, 4, 3) and d["rgb"][0, 0, 0, 0] == 0 and d["rgb"][0, -1, -1, 2] == 255
  assert layout.check_channels(("height",)) == ("height",)
  with pytest.raises(ValueError, match=r"or be \('height',\) alone"):
    layout.check_channels(("labels",))


def test_strip_png_writes_16_bit_gray(tmp_path):
  a = (np.arange(6 * 5, dtype=np.uint32).reshape(6, 5) * 2111).astype(np.uint16)
  png = pngstream.StripPNG(str(tmp_path / "h.png"), 6, 5, 1, bits=16)
  png.write(a[:4])
  png.write(a[4:])
  png.close()
  with Image.open(tmp_path / "h.png") as im:
    assert im.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(im), a)
  with pytest.raises(ValueError, match="16-bit gray"):
    pngstream.StripPNG(str(tmp_path / "x.png"), 2, 2, 3, bits=16)


def test_a_dem_model_trains_evaluates_in_its_own_space_and_exports_real_metres(tmp_path):
  """fm_folder on one small DEM file: 2 steps, then eval.py's path (own space, height statistics) and a Unity
  export carrying the DEM's base elevation."""
  from genenv_jax import evaluation, trained, training
  from genenv_jax.exports import scene as export_scene

  write_dem(tmp_path / "dem.npy", h=48, w=80)
  c = cfg(
    tmp_path / "dem.npy",
    "data.image_size=16",
    "data.test_fraction=0.2",
    "data.metres_per_pixel=25.0",
    "train.num_steps=2",
    "train.eval_every=100",
    "train.feature_net='none'",
  )  # fmt: skip  (no evaluation inside the loop: evaluate_workdir below is eval.py's path, CI time)
  training.run(c, str(tmp_path / "run"))
  m = trained.load(str(tmp_path / "run"))
  assert m.spec.channels == 1 and m.height_range_m == (300.0, 1000.0)
  r = evaluation.evaluate_workdir(str(tmp_path / "run"), 16, batch=8, feature_net="none")
  for row in ("model", "real", "untrained"):
    assert {"fd_own", "kid_own", "precision_own", "recall_own", "c2st/pixels"} <= set(r[row])
  assert r["own_space"]["planes"] == ["height"] and os.path.isfile(r["own_space"]["cache"])
  assert all(np.isfinite(r[row]["fd_own"]) for row in ("model", "real", "untrained"))  # separation: test_own_space
  assert set(r["height_statistics"]) == {"model", "reference", "untrained"}
  scene = export_scene.from_model(m, 33, 33, 0, str(tmp_path))
  assert scene.base_m == 300.0 and scene.height_range_m == 700.0 and scene.metres_per_pixel == 25.0
