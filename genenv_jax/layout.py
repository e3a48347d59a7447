"""The channel layout: which channel kinds a model's tensor holds, and every conversion of them.

A model sees one float tensor ``[n, h, w, C]`` in [-1, 1]; the data (sources,
TFDS records, synthesized datasets) hold integer arrays per kind under a record
key (uint8; heights uint16, and uint8 where older data holds them: ``encode``
reads either by its dtype); pictures and metrics read decoded values.
``Layout`` is the one place that knows all three forms. A new channel kind is one ``Kind`` entry in ``KINDS``
(and a world that draws it).

Record keys follow TFDS's convention (``'image'`` for RGB, what
``tfds.builder_from_directory(...).as_data_source()`` users expect); inside the
library a kind is always called by its name (``'rgb'``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Kind:
  """One channel kind.

  Attributes:
    name: the kind's name in ``data.channels`` and in decoded dicts.
    key: the record key in sources and TFDS datasets.
    categorical: one-hot over the world's label classes (else integer levels).
    planes: model channels for a level kind (3 for RGB, 1 for a scalar map).
    picture: decoded value [n, h, w(, c)] -> [n, h, w, 3] uint8 (palette given).
    bits: the record's bits per value: 8, or 16 for heights (65536 levels, so a
      DEM's metres survive to the engine export).
  """

  name: str
  key: str
  categorical: bool
  planes: int
  picture: Callable[[np.ndarray, np.ndarray], np.ndarray]
  bits: int = 8

  @property
  def dtype(self):
    return np.uint16 if self.bits == 16 else np.uint8

  def width(self, num_label_classes: int) -> int:
    return num_label_classes if self.categorical else self.planes

  def levels(self, num_label_classes: int) -> int:
    """Distinct values per dimension for per-pixel likelihood baselines: 8-bit bins, as the likelihood
    families count bits/dim (a 16-bit height is binned to its nearest 8-bit level, ``to_8bit``)."""
    return num_label_classes if self.categorical else 256


def to_8bit(v: np.ndarray) -> np.ndarray:
  """A record's values at 8 bits: uint16 rounded to the nearest of 256 levels, uint8 unchanged."""
  v = np.asarray(v)
  return np.round(v.astype(np.float64) / 257.0).astype(np.uint8) if v.dtype == np.uint16 else v


def unit(v: np.ndarray) -> np.ndarray:
  """A scalar record (uint8 or uint16) as floats in [0, 1]."""
  v = np.asarray(v)
  return v / (65535.0 if v.dtype == np.uint16 else 255.0)


def _gray(v):
  return np.repeat((np.asarray(v) * 255).astype(np.uint8)[..., None], 3, -1)


KINDS = {
  "rgb": Kind("rgb", "image", False, 3, lambda v, palette: v),
  # One 8-bit channel (gray images): one model channel, counted once by likelihoods and baselines.
  "gray": Kind("gray", "image", False, 1, lambda v, palette: _gray(v)),
  "labels": Kind("labels", "labels", True, 0, lambda v, palette: palette[np.clip(v, 0, len(palette) - 1)]),
  "height": Kind("height", "height", False, 1, lambda v, palette: _gray(v), bits=16),
}
NO_PALETTE = np.zeros((1, 3), np.uint8)


IMAGE_KINDS = ("rgb", "gray")  # the first channel kind: the image itself
HEIGHT_ONLY = ("height",)  # an elevation model alone (a DEM): its pictures are the heights in gray


def check_channels(channels) -> tuple[str, ...]:
  """Validates a ``data.channels`` tuple; returns it as a tuple."""
  chans = tuple(channels)
  maps = [k for k in KINDS if k not in IMAGE_KINDS]
  if chans == HEIGHT_ONLY:
    return chans
  if (
    not chans
    or chans[0] not in IMAGE_KINDS
    or any(c in IMAGE_KINDS for c in chans[1:])
    or len(set(chans)) != len(chans)
    or not set(chans) <= set(KINDS)
  ):
    raise ValueError(
      f"data.channels={chans}: must start with 'rgb' or 'gray' (one 8-bit channel), optionally followed by "
      + " and/or ".join(repr(k) for k in maps)
      + "; or be ('height',) alone (an elevation model)"
    )
  return chans


@dataclasses.dataclass(frozen=True)
class Layout:
  """A model tensor's channels and the label classes behind its one-hot part.

  Attributes:
    channels: kind names in tensor order, e.g. ``('rgb', 'labels', 'height')``.
    class_names: the label-map classes (empty where the data has none).
    palette: [classes, 3] uint8 colours for label-map pictures.
  """

  channels: tuple[str, ...]
  class_names: tuple[str, ...] = ()
  palette: np.ndarray = dataclasses.field(default_factory=lambda: NO_PALETTE, compare=False)

  @classmethod
  def for_data(cls, channels, world=None) -> Layout:
    """The layout of ``channels`` for a built-in world (``None``: user images, RGB only)."""
    if world is None:
      return cls(tuple(channels))
    return cls(tuple(channels), tuple(world.class_names), world.palette)

  @property
  def num_label_classes(self) -> int:
    return len(self.class_names)

  def kinds(self) -> list[Kind]:
    return [KINDS[c] for c in self.channels]

  def slices(self) -> dict[str, slice]:
    """Each kind's channel range in the model tensor."""
    out, c = {}, 0
    for k in self.kinds():
      w = k.width(self.num_label_classes)
      out[k.name] = slice(c, c + w)
      c += w
    return out

  @property
  def num_channels(self) -> int:
    return sum(k.width(self.num_label_classes) for k in self.kinds())

  @property
  def one_hot(self) -> tuple[int, int]:
    """[start, stop) of the one-hot label channels ((0, 0) if none)."""
    for k, s in zip(self.kinds(), self.slices().values()):
      if k.categorical:
        return (s.start, s.stop)
    return (0, 0)

  def record_keys(self) -> list[str]:
    return [k.key for k in self.kinds()]

  def encode(self, record: dict[str, np.ndarray]) -> np.ndarray:
    """Records (uint8, or uint16 heights, per key) -> [n, h, w, C] float32 in [-1, 1]: one-hot for
    categorical kinds; integer levels by their dtype's full scale."""
    parts = []
    for k in self.kinds():
      v = record[k.key]
      if k.categorical:
        parts.append(np.eye(self.num_label_classes, dtype=np.float32)[v] * 2.0 - 1.0)
      else:
        half = 32767.5 if v.dtype == np.uint16 else 127.5  # uint8: exactly the float32 values of 8-bit data
        v = v.astype(np.float32) / np.float32(half) - np.float32(1.0)
        parts.append(v if v.ndim == 4 else v[..., None])
    return np.concatenate(parts, axis=-1)

  def decode(self, x) -> dict[str, np.ndarray]:
    """Model tensor [n, h, w, C] -> ``rgb`` uint8, ``labels`` argmax, scalar maps in [0, 1]."""
    x = np.asarray(x, np.float32)
    out = {}
    for k, s in zip(self.kinds(), self.slices().values()):
      v = x[..., s]
      if k.categorical:
        out[k.name] = v.argmax(-1).astype(np.uint8)
      elif k.planes == 3:
        out[k.name] = np.clip((v + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
      else:
        out[k.name] = np.clip((v[..., 0] + 1.0) / 2.0, 0.0, 1.0)
    return self._with_rgb(out)

  def _with_rgb(self, out: dict) -> dict:
    """A gray (or heights-only) layout's decoded values also carry ``rgb`` (the gray value in all three),
    what pictures and metrics read."""
    plain = "gray" if "gray" in out else ("height" if self.channels == HEIGHT_ONLY and "height" in out else "")
    if plain and "rgb" not in out:
      out["rgb"] = np.repeat(np.clip(np.asarray(out[plain]) * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., None], 3, -1)
    return out

  def from_records(self, record: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Records (as ``to_records`` makes them) -> the decoded form ``decode`` gives."""
    out = {}
    for k in self.kinds():
      if k.key in record:
        v = record[k.key]
        out[k.name] = v if (k.categorical or k.planes == 3) else unit(v)
    return self._with_rgb(out)

  def to_records(self, x):
    """Model tensor in [-1, 1] -> records {key: uint8, heights uint16}, with jax.numpy (on device, in jit)."""
    import jax.numpy as jnp

    out = {}
    for k, s in zip(self.kinds(), self.slices().values()):
      v = x[..., s]
      if k.categorical:
        out[k.key] = jnp.argmax(v, axis=-1).astype(jnp.uint8)
      else:
        top = (1 << k.bits) - 1
        v = jnp.clip(jnp.round((v + 1.0) * (top / 2.0)), 0, top).astype(k.dtype)
        out[k.key] = v if k.planes == 3 else v[..., 0]
    return out

  def tfds_features(self, size: int, extra: dict | None = None):
    """TFDS features of the records at ``size`` px, stored as raw bytes.

    Raw bytes, not TFDS's default int64 list per pixel: 8x faster to
    serialise (0.03 vs 0.29 ms per 32x32 scene), smaller, and decoded the
    same way by ``tfds.data_source``.
    """
    import tensorflow_datasets as tfds

    raw = tfds.features.Encoding.BYTES
    f = {}
    for k in self.kinds():
      shape = (size, size, 3) if k.planes == 3 else (size, size)
      f[k.key] = tfds.features.Tensor(shape=shape, dtype=np.uint8 if k.categorical else k.dtype, encoding=raw)
    f.update(extra or {})
    return tfds.features.FeaturesDict(f)

  def tiles(self, decoded: dict[str, np.ndarray]) -> np.ndarray:
    """[n, h, w*k, 3]: each kind's picture side by side for each scene."""
    parts = [k.picture(decoded[k.name], self.palette) for k in self.kinds() if k.name in decoded]
    return np.concatenate(parts, axis=2)

  def to_json(self) -> dict:
    return {"channels": list(self.channels), "class_names": list(self.class_names)}
