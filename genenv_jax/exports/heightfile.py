"""Your own heightmap as an export scene: ``sample.py --heightmap=FILE --output=O --export=unity,unreal,godot,gltf``.

Readers keep metres end to end:

* ``.npy``: float (or integer) heights in metres.
* ``.tif`` / ``.tiff`` (GeoTIFF, read with tifffile): heights in metres; the
  pixel size from ``ModelPixelScaleTag`` (33550) and the nodata value from
  ``GDAL_NODATA`` (42113) when present (nodata pixels are filled with the
  lowest valid height, and their count is reported).
* ``.png``: a 16-bit grayscale PNG in whole metres (as DEM tools export
  them); an 8-bit PNG is refused by name (256 levels are not a DEM: convert
  it or give a 16-bit one).

The ground resolution comes from ``--metres_per_pixel``, else the GeoTIFF,
else is refused (no guess). ``--labels=FILE`` (an 8-bit index PNG of the same
size) adds a label map for ``splat`` and ``tiled``. A scene larger than the
engines take is cropped from the top-left to the largest size every asked
format accepts (said in one line); one no size fits is refused.
"""

from __future__ import annotations

import os

import numpy as np

GEOTIFF_PIXEL_SCALE, GDAL_NODATA = 33550, 42113
READERS = (".npy", ".tif", ".tiff", ".png")


def read_heights(path: str) -> tuple[np.ndarray, float | None, str]:
  """(heights in metres [h, w] float64, metres per pixel from the file or None, a note on what was read)."""
  p = os.path.expanduser(path)
  ext = os.path.splitext(p)[1].lower()
  if ext not in READERS:
    raise ValueError(f"heightmap={path!r}: unknown kind {ext or '(none)'!r}; give one of {list(READERS)}")
  if not os.path.isfile(p):
    raise ValueError(f"heightmap={path!r}: no such file")
  mpp, note = None, ""
  try:
    if ext == ".npy":
      h = np.load(p, allow_pickle=False)
    elif ext == ".png":
      from PIL import Image

      with Image.open(p) as im:
        if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
          raise ValueError(
            f"heightmap={path!r}: a {im.mode} PNG holds 8-bit values (256 levels), not heights; give a 16-bit "
            "grayscale PNG in metres, a GeoTIFF or a .npy of metres"
          )
        h = np.asarray(im)
    else:
      import tifffile

      with tifffile.TiffFile(p) as tif:
        page = tif.pages[0]
        h = page.asarray()
        scale = page.tags.get(GEOTIFF_PIXEL_SCALE)
        if scale is not None:
          sx, sy = float(scale.value[0]), float(scale.value[1])
          if sx > 0 and abs(sx - sy) <= 1e-6 * sx:
            mpp = sx
        nd = page.tags.get(GDAL_NODATA)
        if nd is not None:
          value = float(str(nd.value).strip("\x00 "))
          bad = (h == value) | ~np.isfinite(h.astype(np.float64))
          if bad.all():
            raise ValueError(f"heightmap={path!r}: every pixel is nodata ({value:g})")
          if bad.any():
            h = np.where(bad, h[~bad].min(), h)
            note = f"{int(bad.sum())} nodata pixels ({value:g}) filled with the lowest height"
  except (OSError, ValueError) as e:
    if isinstance(e, ValueError) and str(e).startswith("heightmap="):
      raise
    raise ValueError(f"heightmap={path!r}: unreadable ({type(e).__name__}: {e})") from e
  h = np.asarray(h)
  if h.ndim == 3 and h.shape[-1] == 1:
    h = h[..., 0]
  if h.ndim != 2 or h.dtype.kind not in "uif":
    raise ValueError(f"heightmap={path!r}: needs one 2-D band of numbers; got shape {h.shape}, dtype {h.dtype}")
  h = h.astype(np.float64)
  if not np.isfinite(h).all():
    raise ValueError(f"heightmap={path!r}: {int((~np.isfinite(h)).sum())} non-finite heights (no nodata tag)")
  return h, mpp, note


def fitting_size(shape, names, check_sizes) -> int:
  """The largest n <= the scene's shorter side at which ``check_sizes((n, n), names)`` passes."""
  top = min(shape)
  for n in range(top, 1, -1):
    try:
      check_sizes((n, n), names)
      return n
    except ValueError:
      continue
  raise ValueError(f"export={','.join(names)}: no square size up to {top} suits all of them; export them separately")


def scene(path: str, names, metres_per_pixel: float | None, labels_path: str | None, check_sizes):
  """The ExportScene of a heightmap file, cropped to a size every format in ``names`` takes."""
  from genenv_jax import logs
  from genenv_jax.exports.scene import ExportScene

  h, file_mpp, note = read_heights(path)
  mpp = metres_per_pixel or file_mpp
  if not mpp or mpp <= 0:
    raise ValueError(f"heightmap={path!r}: give the ground resolution, --metres_per_pixel=M (the file does not say it)")
  labels = None
  if labels_path:
    from PIL import Image

    try:
      with Image.open(os.path.expanduser(labels_path)) as im:
        labels = np.asarray(im.convert("L") if im.mode not in ("L", "P") else im)
    except OSError as e:
      raise ValueError(f"labels={labels_path!r}: unreadable ({e})") from e
    if labels.shape != h.shape:
      raise ValueError(f"labels={labels_path!r}: {labels.shape[1]}x{labels.shape[0]} px, the heightmap is "
                       f"{h.shape[1]}x{h.shape[0]}; they must match")  # fmt: skip
  n = fitting_size(h.shape, names, check_sizes)
  if (n, n) != h.shape:
    logs.phase(f"heightmap {h.shape[0]}x{h.shape[1]}: cropped to its top-left {n}x{n} (what {','.join(names)} take)")
  if note:
    logs.phase(f"heightmap: {note}")
  h = h[:n, :n]
  lo, hi = float(h.min()), float(h.max())
  k = int(labels.max()) + 1 if labels is not None else 1
  rng = np.random.default_rng(0)
  palette = rng.integers(40, 230, (max(k, 1), 3)).astype(np.uint8)
  shade = np.clip((h - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
  return ExportScene(
    rgb=np.repeat(shade[..., None], 3, -1) if labels is None else palette[labels[:n, :n]],
    labels=None if labels is None else labels[:n, :n].astype(np.uint8),
    height=h.astype(np.float32),
    world="",
    class_names=tuple(f"class_{i}" for i in range(k)),
    palette=palette,
    metres_per_pixel=float(mpp),
    height_range_m=1.0,  # heights are metres already
    source=f"heightmap {os.path.abspath(os.path.expanduser(path))}",
  )
