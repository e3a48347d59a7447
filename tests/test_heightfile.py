"""sample.py --heightmap: your own elevation model into every engine, in metres, with its base elevation."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genenv_jax import exports
from genenv_jax.exports import heightfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dem(n=140, lo=310.0, hi=1040.0):
  """An asymmetric DEM spanning lo..hi metres: a valley running south-east, a peak in the north-east."""
  yy, xx = np.mgrid[0:n, 0:n] / (n - 1)
  z = 0.6 * np.exp(-((yy - 0.2) ** 2 + (xx - 0.8) ** 2) * 8) + 0.4 * np.abs(yy - xx) + 0.05 * yy
  z = (z - z.min()) / (z.max() - z.min())
  return lo + (hi - lo) * z


def _sample(*args):
  return subprocess.run([sys.executable, "sample.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _metres(out, fmt):
  side = json.load(open(os.path.join(out, fmt, f"{fmt}.json")))
  lo, step = side["min_height_m"], side["height_step_m"]
  if fmt == "unity":
    n = side["import_dialog"]["Width"]
    q = np.flipud(np.fromfile(os.path.join(out, "unity", "terrain.raw"), "<u2").reshape(n, n))
  elif fmt == "unreal":
    q = np.asarray(Image.open(os.path.join(out, "unreal", "terrain.png")))
  else:
    q = np.fromfile(os.path.join(out, "godot", "terrain.r16"), "<u2").reshape(side["height"], side["width"])
  return q * step + lo, side


@pytest.mark.parametrize("kind", ["npy", "tif", "png"])
def test_heightmap_export_round_trips_in_metres_with_its_base_elevation(kind, tmp_path):
  dem = _dem()
  path = str(tmp_path / f"dem.{kind}")
  if kind == "npy":
    np.save(path, dem)
    mpp = ["--metres_per_pixel=30"]
  elif kind == "tif":
    import tifffile

    with_nodata = dem.astype(np.float32).copy()
    with_nodata[-1, -1] = -9999.0  # outside the crop below; read and filled
    tifffile.imwrite(path, with_nodata, extratags=[(33550, "d", 3, (30.0, 30.0, 0.0)), (42113, "s", 0, "-9999")])
    mpp = []  # the GeoTIFF says 30 m
  else:
    dem = np.round(dem)
    Image.fromarray(dem.astype(np.uint16)).save(path)
    mpp = ["--metres_per_pixel=30"]
  out = str(tmp_path / "out")
  r = _sample(f"--heightmap={path}", f"--output={out}", "--export=unity,godot", *mpp)
  assert r.returncode == 0, r.stderr
  assert "cropped to its top-left 129x129" in r.stderr
  want = dem[:129, :129]
  for fmt in ("unity", "godot"):
    got, side = _metres(out, fmt)
    assert side["base_elevation_m"] == pytest.approx(want.min(), abs=1e-3)
    assert side["max_height_m"] == pytest.approx(want.max(), abs=1e-3) and side["metres_per_pixel"] == 30.0
    assert np.abs(got - want).max() <= side["height_step_m"] / 2 + 1e-3  # within one 16-bit step of the metres
  unreal = str(tmp_path / "unreal")
  assert _sample(f"--heightmap={path}", f"--output={unreal}", "--export=unreal", *mpp).returncode == 0
  got, side = _metres(unreal, "unreal")
  np.testing.assert_allclose(got, dem[:127, :127], atol=side["height_step_m"])


def test_bad_heightmaps_are_refused_by_name(tmp_path):
  rgb = tmp_path / "photo.png"
  Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(rgb)
  r = _sample(f"--heightmap={rgb}", f"--output={tmp_path / 'a'}", "--export=godot", "--metres_per_pixel=1")
  assert r.returncode == 1 and "a RGB PNG holds 8-bit values" in r.stderr
  np.save(tmp_path / "d.npy", _dem(40))
  r = _sample(f"--heightmap={tmp_path / 'd.npy'}", f"--output={tmp_path / 'b'}", "--export=godot")
  assert r.returncode == 1 and "give the ground resolution, --metres_per_pixel=M" in r.stderr
  r = _sample(f"--heightmap={tmp_path / 'd.npy'}", f"--output={tmp_path / 'c'}", "--export=unity,unreal",
              "--metres_per_pixel=1")  # fmt: skip
  assert r.returncode == 1 and "no square size up to 40 suits all of them" in r.stderr
  with pytest.raises(ValueError, match=r"unknown kind '.jpg'"):
    heightfile.read_heights(str(tmp_path / "x.jpg"))
  with pytest.raises(ValueError, match="no such file"):
    heightfile.read_heights(str(tmp_path / "missing.npy"))


def test_labels_come_along_for_splat_and_tiled(tmp_path):
  dem = _dem(64)
  np.save(tmp_path / "d.npy", dem)
  labels = (dem > 700).astype(np.uint8)
  Image.fromarray(labels).save(tmp_path / "l.png")
  sc = heightfile.scene(str(tmp_path / "d.npy"), ["godot", "tiled"], 5.0, str(tmp_path / "l.png"), exports.check_sizes)
  np.testing.assert_array_equal(sc.labels, labels)
  written = exports.export(sc, str(tmp_path / "o"), ["godot", "tiled"], {"t": 1})
  assert set(written) == {"godot", "tiled"}
