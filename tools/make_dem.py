r"""Writes a real elevation model as a GeoTIFF, offline: the DEMs matplotlib ships as sample data.

  python tools/make_dem.py --output=runs/jacksboro.tif
  python train.py --config=configs/fm_folder.py:cpu --config.data.path=runs/jacksboro.tif \
    --config.data.channels="('height',)" --workdir=runs/fm_folder_dem_cpu

``--dem=jacksboro`` (default) is matplotlib's ``jacksboro_fault_dem.npz``: a
344x403 grid of whole metres (236-1076 m) at 3 arc-seconds around the
Jacksboro fault, Tennessee, USGS data. Its pixels are 3 arc-seconds square in
degrees, about 92 m north-south and 74 m east-west there; the tool resamples
the columns (bilinear) so pixels are square in metres, and writes float32
metres with the pixel size in ``ModelPixelScaleTag`` (what
``genenv_jax.exports.heightfile`` reads), so training and ``sample.py
--heightmap`` read the ground resolution from the file.
"""

import math
import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from genenv_jax.exports.heightfile import GEOTIFF_PIXEL_SCALE  # noqa: E402

_DEM = flags.DEFINE_enum("dem", "jacksboro", ["jacksboro"], "Which of matplotlib's sample DEMs.")
_OUT = flags.DEFINE_string("output", None, "GeoTIFF to write (.tif).", required=True)

EARTH_M_PER_DEG_LAT = 110_574.0
EARTH_M_PER_DEG_LON_EQUATOR = 111_320.0


def jacksboro() -> tuple[np.ndarray, float]:
  """(heights in metres [h, w] float32 with square pixels, metres per pixel)."""
  import matplotlib.cbook as cbook

  with cbook.get_sample_data("jacksboro_fault_dem.npz") as d:
    z = np.asarray(d["elevation"], np.float32)
    dx, dy, lat = float(d["dx"]), float(d["dy"]), (float(d["ymin"]) + float(d["ymax"])) / 2
  my = dy * EARTH_M_PER_DEG_LAT
  mx = dx * EARTH_M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat))
  w = round(z.shape[1] * mx / my)
  z = np.asarray(Image.fromarray(z, "F").resize((w, z.shape[0]), Image.Resampling.BILINEAR), np.float32)
  return z, my


def main(argv):
  del argv
  import tifffile

  z, mpp = jacksboro()
  out = os.path.expanduser(_OUT.value)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  tifffile.imwrite(out, z, extratags=[(GEOTIFF_PIXEL_SCALE, "d", 3, (mpp, mpp, 0.0), False)])
  print(f"wrote {out}: {z.shape[0]}x{z.shape[1]} px, {z.min():.0f}-{z.max():.0f} m, {mpp:.1f} m per pixel")


if __name__ == "__main__":
  app.run(main)
