r"""A generated terrain's Unity export beside the real elevation model it learned, in metres, shaded alike.

  python sample.py --workdir=runs/fm_folder_dem_cpu --scene_size=257x257 --output=runs/dem_export --export=unity
  python tools/dem_picture.py --unity=runs/dem_export/unity --dem=runs/jacksboro.tif \
    --output=docs/dem_257_model_vs_real.png

Left: the model's scene read back from ``terrain.raw`` with its sidecar's
base elevation and height step (what Unity imports). Right: the real DEM's
top-left crop of the same size. Both are coloured by one elevation scale
(the DEM's range) and hill-shaded from the north-west with the same ground
resolution, so relief and valleys compare by eye.
"""

import json
import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from genenv_jax.exports import heightfile  # noqa: E402

_UNITY = flags.DEFINE_string("unity", None, "A Unity export folder (terrain.raw + unity.json).", required=True)
_DEM = flags.DEFINE_string("dem", None, "The real elevation model (.tif/.npy/.png).", required=True)
_OUT = flags.DEFINE_string("output", None, "PNG to write.", required=True)


def unity_metres(folder: str) -> tuple[np.ndarray, float]:
  """(heights in metres, north row first; metres per pixel) of a Unity export."""
  with open(os.path.join(folder, "unity.json")) as f:
    side = json.load(f)
  n = side["import_dialog"]["Width"]
  raw = np.fromfile(os.path.join(folder, "terrain.raw"), "<u2").reshape(n, n)
  return np.flipud(raw) * side["height_step_m"] + side["min_height_m"], side["metres_per_pixel"]


def shaded(z: np.ndarray, mpp: float, lo: float, hi: float) -> np.ndarray:
  """[h, w, 3] uint8: a green-to-brown elevation ramp times a north-west hillshade."""
  gy, gx = np.gradient(z, mpp)
  normal = np.stack([-gx, -gy, np.ones_like(z)], -1)
  normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
  light = np.array([-1.0, -1.0, 1.0]) / np.sqrt(3.0)
  shade = np.clip(normal @ light, 0, 1)[..., None]
  t = np.clip((z - lo) / (hi - lo), 0, 1)[..., None]
  ramp = (1 - t) * np.array([70, 130, 60]) + t * np.array([225, 205, 170])
  return np.clip(ramp * (0.35 + 0.65 * shade), 0, 255).astype(np.uint8)


def main(argv):
  del argv
  model, mpp = unity_metres(_UNITY.value)
  real, _, _ = heightfile.read_heights(_DEM.value)
  n = model.shape[0]
  crop = real[:n, :n]
  lo, hi = float(real.min()), float(real.max())
  gap = np.full((crop.shape[0], 6, 3), 255, np.uint8)
  pic = np.concatenate(
    [shaded(model[: crop.shape[0], : crop.shape[1]], mpp, lo, hi), gap, shaded(crop, mpp, lo, hi)], 1
  )
  Image.fromarray(pic).resize((pic.shape[1] * 2, pic.shape[0] * 2), Image.Resampling.NEAREST).save(_OUT.value)
  print(
    f"wrote {_OUT.value}: model {model.min():.0f}-{model.max():.0f} m, real crop {crop.min():.0f}-{crop.max():.0f} m"
  )


if __name__ == "__main__":
  app.run(main)
