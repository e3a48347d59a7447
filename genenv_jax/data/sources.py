"""Random-access sources of scenes: built-in worlds, image folders, TFDS catalog.

Every source has ``len(source)`` and ``source.get(indices)``, which returns a
dict of stacked numpy arrays: ``image`` [n, s, s, 3] uint8 always; ``labels``
[n, s, s] uint8 and ``height`` [n, s, s] uint8 where the source has them;
``label`` [n] int32 (scene class, 0 where the source has none).
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps

from genenv_jax.data import world_builder
from genenv_jax.scenes import get_world

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class Source(Protocol):
  num_classes: int
  class_names: tuple[str, ...]  # scene classes (for conditioning); () when there are none
  description: str  # which images these are, for reports (e.g. how a held-out split was chosen)
  has_structure: bool  # labels and height maps available

  def __len__(self) -> int: ...

  def get(self, indices: list[int]) -> dict[str, np.ndarray]: ...


def _to_8bit(img: Image.Image) -> Image.Image:
  """16- and 32-bit integer images (Pillow modes ``I;16*``, ``I``) scaled to 8 bits, not clipped."""
  a = np.asarray(img).astype(np.float64)
  top = 65535.0 if img.mode.startswith("I;16") or a.max() <= 65535 else float(a.max())
  return Image.fromarray(np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8), "L")


def to_rgb_square(img: Image.Image, size: int) -> np.ndarray:
  """Any PIL image -> [size, size, 3] uint8: RGB, shorter side resized, centre crop.

  The EXIF orientation is applied (images as displayed, not as stored).
  16-bit images are scaled to 8 bits; RGBA is composited on black (as
  StyleGAN2-ADA's dataset_tool drops alpha); grayscale and palette images are
  converted to RGB.
  """
  img = ImageOps.exif_transpose(img)
  if img.mode.startswith("I"):
    img = _to_8bit(img)
  if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
    img = img.convert("RGBA")
    bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
    img = Image.alpha_composite(bg, img)
  img = img.convert("RGB")
  return _square(img, size)


def to_gray_square(img: Image.Image, size: int) -> np.ndarray:
  """Any PIL image -> [size, size] uint8 gray (``data.channels=('gray',)``): as ``to_rgb_square``, then
  ITU-R 601 luma (Pillow's ``L``) for colour images; gray images keep their values."""
  return np.asarray(Image.fromarray(to_rgb_square(img, size)).convert("L"), np.uint8)


def is_gray(images: np.ndarray) -> bool:
  """Whether every RGB image of [n, h, w, 3] has R = G = B everywhere (a gray folder read as RGB)."""
  return bool(len(images)) and bool((images[..., :1] == images).all())


def _square(img: Image.Image, size: int) -> np.ndarray:
  w, h = img.size
  scale = size / min(w, h)
  nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
  img = img.resize((nw, nh), Image.Resampling.LANCZOS)
  left, top = (nw - size) // 2, (nh - size) // 2
  return np.asarray(img.crop((left, top, left + size, top + size)), np.uint8)


def blank_reason(img: Image.Image) -> str:
  """Why an image has nothing in it ('fully transparent', 'every pixel 0'), or ''.

  Blank: no opaque pixel, or one gray level everywhere (all black, all
  white, one flat gray): what an empty export or a failed render writes. A
  flat colour (a red swatch) is kept: it may be the user's data.
  """
  alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
  if alpha and np.asarray(img.convert("RGBA"))[..., 3].max() == 0:
    return "fully transparent"
  ext = img.getextrema()
  bands = ext if isinstance(ext[0], tuple) else (ext,)
  if img.mode in ("RGBA", "LA", "PA"):
    bands = bands[:-1]
  if img.mode == "P":
    return ""  # indices, not levels: a one-index palette image is one colour, judged below after conversion
  values = {lo for lo, hi in bands if lo == hi}
  if len(values) == 1 and all(lo == hi for lo, hi in bands):
    return f"every pixel {int(next(iter(values)))}"
  return ""


class WorldSource:
  """One split of a built-in world, prepared locally as array_record on first use.

  Opening is free: the dataset is generated (or found on disk) when it is
  first read, so configs are checked before any scene is drawn.
  """

  has_structure = True

  def __init__(self, world: str, size: int, num_train: int, num_test: int, data_dir: str, split: str):
    self._args = (world, size, num_train, num_test, data_dir)
    self._split = split
    self._data = None
    self.class_names = tuple(get_world(world).scene_class_names)
    self.num_classes = len(self.class_names)
    self.description = f"the {world} world's {split} split ({num_train if split == 'train' else num_test} scenes)"

  @property
  def _ds(self):
    if self._data is None:
      self._data = world_builder.prepare(*self._args).as_data_source(split=self._split)
    return self._data

  def __len__(self):
    return len(self._ds)

  def get(self, indices):
    rows = self._ds.__getitems__([int(i) for i in indices])
    return {
      "image": np.stack([r["image"] for r in rows]),
      "labels": np.stack([r["labels"] for r in rows]),
      "height": np.stack([r["height"] for r in rows]),
      "label": np.array([r["label"] for r in rows], np.int32),
    }


def split_of(relpath: str, test_fraction: float) -> str:
  """'test' or 'train' for an image at ``relpath`` (relative to the folder, '/'-separated).

  A hash of the path, not of the position in a listing: adding or removing
  files never moves another file between the splits.
  """
  u = int.from_bytes(hashlib.sha256(relpath.encode("utf-8")).digest()[:8], "big") / 2.0**64
  return "test" if u < test_fraction else "train"


def list_images(path: str, key: str = "data.path") -> list[str]:
  """Image files under ``path`` (recursive), as sorted '/'-separated paths relative to it."""
  root = os.path.expanduser(path)
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{key}={path!r}: no such folder of images")
  files = sorted(
    os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
    for d, _, fs in os.walk(root)
    for f in fs
    if f.lower().endswith(IMAGE_EXTENSIONS)
  )
  if not files:
    raise ValueError(f"{key}={path!r}: no images found (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
  return files


def folder_classes(files: list[str]) -> tuple[str, ...]:
  """Scene classes of a folder: its subfolders' names, sorted (ImageFolder's convention).

  Only when every image lies in a subfolder and there are at least two;
  otherwise the folder has one class (``()``).
  """
  tops = {f.split("/", 1)[0] for f in files if "/" in f}
  if len(tops) < 2 or any("/" not in f for f in files):
    return ()
  return tuple(sorted(tops))


class FolderSource:
  """One split of a folder of the user's PNG/JPEG images, held in memory.

  ``split='train'`` / ``'test'``: by default the images whose path hashes
  below ``test_fraction`` are the test split (``split_of``), the rest train;
  with ``test_path`` the whole of ``path`` trains and ``test_path`` is the
  test split. Subfolders are scene classes (``folder_classes``), with the
  same class names in both splits.

  Corrupt or unreadable files are skipped, counted and named in one warning
  per split (StyleGAN2-ADA's dataset tool also skips what PIL cannot open):
  one bad file in a scraped folder should not stop a run. A split where
  nothing decodes is an error.
  """

  has_structure = False

  def __init__(
    self, path: str, size: int, split: str = "train", test_fraction: float = 0.0, test_path: str = "", gray=False
  ):
    files = list_images(path)
    self.class_names = folder_classes(files)
    self.num_classes = max(1, len(self.class_names))
    if test_path:
      self.description = f"data.test_path={test_path!r} (all of it)" if split == "test" else f"data.path={path!r}"
      if split == "test":
        root, key = test_path, "data.test_path"
        files = list_images(test_path, key)
        if self.class_names:
          theirs = folder_classes(files)
          unknown = sorted(set(theirs) - set(self.class_names))
          if not theirs or unknown:
            raise ValueError(
              f"data.test_path={test_path!r}: its subfolders must be classes of data.path "
              f"{list(self.class_names)}; found {list(theirs) or 'images outside class subfolders'}"
            )
      else:
        root, key = path, "data.path"
    else:
      root, key = path, "data.path"
      files = [f for f in files if split_of(f, test_fraction) == split]
      pct = f"{100 * test_fraction:g}%"
      self.description = (
        f"data.path={path!r}: the {pct} held out by a hash of each file's path"
        if split == "test"
        else f"data.path={path!r} minus the {pct} held out"
      )
    self.split = split
    self.files = files
    index = {c: i for i, c in enumerate(self.class_names)}
    images, labels, self.skipped, self.blank, wide = [], [], [], [], []
    for rel in files:
      f = os.path.join(os.path.expanduser(root), *rel.split("/"))
      try:
        with Image.open(f) as img:
          img.load()
          why = blank_reason(img)
          if why:
            self.blank.append((f, why))
            continue
          images.append(to_gray_square(img, size) if gray else to_rgb_square(img, size))
          if img.mode.startswith("I"):  # (file, distinct 16-bit values, distinct 8-bit values kept)
            wide.append((f, len(np.unique(np.asarray(img))), len(np.unique(images[-1]))))
          labels.append(index[rel.split("/", 1)[0]] if index else 0)
      except (OSError, ValueError, Image.DecompressionBombError) as e:
        self.skipped.append((f, str(e)))
    if self.skipped:
      names = ", ".join(os.path.basename(f) for f, _ in self.skipped[:5])
      logging.warning(
        "%s=%r (%s split): skipped %d of %d files that are not readable images: %s%s",
        key,
        root,
        split,
        len(self.skipped),
        len(files),
        names,
        " ..." if len(self.skipped) > 5 else "",
      )
    if self.blank:
      names = ", ".join(f"{os.path.basename(f)} ({why})" for f, why in self.blank[:5])
      logging.warning(
        "%s=%r (%s split): skipped %d of %d images with nothing in them: %s%s",
        key,
        root,
        split,
        len(self.blank),
        len(files),
        names,
        " ..." if len(self.blank) > 5 else "",
      )
    if wide:
      # Raw-metre heights (e.g. a DEM tile spanning 300-1000 in a 0-65535 PNG) collapse to a few gray levels
      # when scaled to 8 bits: say which files, and how many levels each kept.
      few = sum(1 for _, _, kept in wide if kept <= 16)
      names = ", ".join(f"{os.path.basename(f)}: {n} values -> {kept}" for f, n, kept in wide[:3])
      logging.warning(
        "%s=%r (%s split): %d images have 16-bit values (%s%s) and were scaled to 8 bits; %d of them kept at most "
        "16 gray levels. Heights stored in metres lose their detail this way: export them with "
        "sample.py --heightmap=FILE, which reads 16-bit PNG, GeoTIFF and .npy heights in metres",
        key,
        root,
        split,
        len(wide),
        names,
        " ..." if len(wide) > 3 else "",
        few,
      )
    if files and not images:
      raise ValueError(
        f"{key}={root!r}: none of the {len(files)} image files could be decoded or had content ({split} split; "
        f"{len(self.skipped)} unreadable, {len(self.blank)} blank or fully transparent)"
      )
    self._images = np.stack(images) if images else np.zeros((0, size, size) + (() if gray else (3,)), np.uint8)
    self._labels = np.asarray(labels, np.int32)
    if not gray and is_gray(self._images):
      logging.warning(
        "%s=%r (%s split): all %d images are gray (R = G = B): read as RGB, a model learns three copies of one "
        "channel and bits/dim count them three times; --config.data.channels=\"('gray',)\" models one channel",
        key,
        root,
        split,
        len(self._images),
      )

  def __len__(self):
    return len(self._images)

  def get(self, indices):
    idx = np.asarray(indices, np.int64)
    return {"image": self._images[idx], "label": self._labels[idx]}


class LayeredFolderSource:
  """One split of a folder of scenes in sibling layers (``genenv_jax.data.layers``), held in memory.

  The split is by a hash of each scene's NAME (``split_of``), or ``test_path``
  (another layered folder) is the test split. No scene classes; the label
  map's classes are ``label_classes`` with their ``palette`` (classes.json).
  """

  has_structure = True

  def __init__(self, path, size, split, test_fraction, test_path, channels, found):
    from genenv_jax.data import layers

    root = os.path.expanduser(path)
    folder = layers.LayeredFolder(root, tuple(channels), found)
    self.layers = found
    self.label_classes, self.palette = folder.class_names, folder.palette
    self.height_range_m = folder.height_range_m
    self.metres_per_pixel = folder.metres_per_pixel
    if test_path:
      if split == "test":
        troot = os.path.expanduser(test_path)
        tfound = layers.layers_on_disk(troot)
        if not tfound:
          raise ValueError(f"data.test_path={test_path!r}: not a layered folder (no height/ or labels/ beside rgb/)")
        test = layers.LayeredFolder(troot, tuple(channels), tfound)
        if test.class_names != folder.class_names:
          raise ValueError(f"data.test_path={test_path!r}: classes.json differs from data.path's")
        test.height_range_m = folder.height_range_m  # the training folder's metres map both
        folder, names = test, test.names
      else:
        names = folder.names
      self.description = f"data.test_path={test_path!r} (all of it)" if split == "test" else f"data.path={path!r}"
    else:
      names = [n for n in folder.names if split_of(n, test_fraction) == split]
      pct = f"{100 * test_fraction:g}%"
      self.description = (
        f"data.path={path!r} (layers {layers.describe(found)}): the {pct} of scenes held out by a hash of NAME"
        if split == "test"
        else f"data.path={path!r} (layers {layers.describe(found)}) minus the {pct} held out"
      )
    self.class_names, self.num_classes = (), 1
    rows = [folder.read(n, size) for n in names]
    keys = rows[0].keys() if rows else ("image",)
    self._records = {k: np.stack([r[k] for r in rows]) if rows else np.zeros((0, size, size), np.uint8) for k in keys}
    self._n = len(rows)

  def __len__(self):
    return self._n

  def get(self, indices):
    idx = np.asarray(indices, np.int64)
    out = {k: v[idx] for k, v in self._records.items()}
    out["label"] = np.zeros((len(idx),), np.int32)
    return out


class TfdsCatalogSource:
  """Any TFDS catalog dataset already prepared in ``data_dir`` (array_record).

  Nothing is downloaded at run time: prepare the dataset beforehand where
  there is network, or point ``data_dir`` at a copy.
  """

  has_structure = False

  def __init__(
    self, name: str, split: str, size: int, data_dir: str | None, image_key: str, label_key: str, gray=False
  ):
    import tensorflow_datasets as tfds

    self._gray = gray
    try:
      self._ds = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as e:  # TFDS raises many types here; all mean "not usable".
      raise ValueError(
        f"data.name={name!r} split={split!r}: not a prepared TFDS dataset in "
        f"data_dir={data_dir!r} ({type(e).__name__}: {e}). Nothing is downloaded at run time."
      ) from e
    self._size, self._image_key, self._label_key = size, image_key, label_key
    self.num_classes = 1
    self.class_names = ()
    self.description = f"TFDS {name!r} split {split!r}"
    first = self._ds[0]
    if image_key not in first:
      raise ValueError(f"data.image_key={image_key!r}: dataset {name!r} has features {sorted(first)}")
    if label_key and label_key in first:
      try:
        builder = tfds.builder(name, data_dir=data_dir)
        self.num_classes = builder.info.features[label_key].num_classes
        self.class_names = tuple(builder.info.features[label_key].names)
      except Exception:  # Not a ClassLabel: no conditioning.
        self.num_classes, self.class_names = 1, ()

  def __len__(self):
    return len(self._ds)

  def _image(self, x):
    x = np.asarray(x)
    if self._gray:
      if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
      img = Image.fromarray(x.astype(np.uint8), "L" if x.ndim == 2 else ("RGBA" if x.shape[-1] == 4 else "RGB"))
      return to_gray_square(img, self._size)
    if x.ndim == 2:
      x = x[..., None]
    if x.shape[-1] == 1:
      x = np.repeat(x, 3, -1)
    if x.shape[:2] != (self._size, self._size) or x.shape[-1] != 3:
      mode = "RGBA" if x.shape[-1] == 4 else "RGB"
      return to_rgb_square(Image.fromarray(x.astype(np.uint8), mode), self._size)
    return x.astype(np.uint8)

  def _rows(self, indices):
    keys = [int(i) for i in indices]
    try:
      return self._ds.__getitems__(keys)
    except TypeError:
      # tfds.testing.mock_data (4.9.10) mocks __getitems__ without binding
      # self; item access works there. Real array_record sources batch.
      return [self._ds[k] for k in keys]

  def get(self, indices):
    rows = self._rows(indices)
    label = [int(r[self._label_key]) if self._label_key in r and self.num_classes > 1 else 0 for r in rows]
    return {"image": np.stack([self._image(r[self._image_key]) for r in rows]), "label": np.array(label, np.int32)}


def make_source(data_cfg, split: str, hier=None) -> Source:
  """Builds the source that ``data_cfg.source`` names, for ``split`` ('train'/'test').

  ``hier``: a hierarchical model's ``hier`` section: the world's windows come
  with coarse maps of its large regions (``genenv_jax.data.coarse``).
  """
  kind = data_cfg.source
  if hier is not None:
    from genenv_jax.data import coarse

    coarse.check(hier, data_cfg)
  if kind == "world":
    src = WorldSource(
      data_cfg.world, data_cfg.image_size, data_cfg.num_train, data_cfg.num_test, data_cfg.data_dir, split
    )
    return src if hier is None else coarse.make_source(src, data_cfg, hier, split)
  if kind == "folder":
    from genenv_jax.data import dem, layers

    if dem.is_elevation_file(data_cfg.path):  # one large DEM, cut into windows
      return dem.DemSource(data_cfg, split)
    root = os.path.expanduser(data_cfg.path)
    found = layers.layers_on_disk(root) if os.path.isdir(root) else {}
    if found or len(tuple(data_cfg.channels)) > 1:
      if not found:
        raise ValueError(
          f"data.channels={tuple(data_cfg.channels)}: data.path={data_cfg.path!r} is a flat folder of images; "
          "heights and label maps come from sibling layers DIR/rgb/NAME.png, DIR/height/NAME.png|.npy|.tif, "
          "DIR/labels/NAME.png (+ DIR/classes.json)"
        )
      return LayeredFolderSource(
        data_cfg.path,
        data_cfg.image_size,
        split,
        data_cfg.get("test_fraction", 0.0),
        data_cfg.get("test_path", ""),
        data_cfg.channels,
        found,
      )
    return FolderSource(
      data_cfg.path,
      data_cfg.image_size,
      split,
      data_cfg.get("test_fraction", 0.0),
      data_cfg.get("test_path", ""),
      gray=tuple(data_cfg.channels)[0] == "gray",
    )
  if kind == "tfds":
    tfds_split = data_cfg.train_split if split == "train" else data_cfg.test_split
    return TfdsCatalogSource(
      data_cfg.name,
      tfds_split,
      data_cfg.image_size,
      data_cfg.data_dir or None,
      data_cfg.image_key,
      data_cfg.label_key,
      gray=tuple(data_cfg.channels)[0] == "gray",
    )
  raise ValueError(f"data.source={kind!r}: must be one of 'world', 'folder', 'tfds'")
