"""The scene feature network: the feature space of FD, KID and precision/recall.

No Inception weights can be downloaded here, so the project trains its own
feature network on the built-in worlds (``genenv_jax.metrics.feature_training``,
``python tools/train_feature_net.py``) and ships the weights in
``genenv_jax/metrics/weights/``. The network reads RGB only, resized to 32x32,
and is trained to tell the world and scene class of a scene (12 kinds) and to
regress each world's scene statistics, so its features encode both what kind
of scene it is and its layout. Features are the 128 global-average-pooled
activations of the last convolution (Inception FID's ``pool3`` analogue).

Feature extraction runs jitted with the batch sharded over the devices of a
mesh, in fixed-size chunks so results do not depend on the device count.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from genenv_jax import parallel
from genenv_jax.nets.blocks import avg_pool2

INPUT_SIZE = 32
WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
DEFAULT_WEIGHTS = os.path.join(WEIGHTS_DIR, "scene_features_v1.npz")
# What the corruption head tells apart (``feature_training.corrupt``).
CORRUPTIONS = ("clean", "noise", "blur", "quantize", "colour", "patch_swap")


class SceneFeatureNet(nn.Module):
  """Three conv stages (32x32 -> 4x4), global average pool, then heads.

  Returns ``(features [b, 4*width], kind_logits [b, num_kinds], stats,
  corruption_logits [b, len(CORRUPTIONS)])`` where ``stats`` is a tuple of
  per-world statistic predictions.
  """

  num_kinds: int
  stat_dims: tuple[int, ...]
  width: int = 32

  @nn.compact
  def __call__(self, x):
    feats = trunk(x, self.width)
    logits = nn.Dense(self.num_kinds, name="kind")(feats)
    stats = tuple(nn.Dense(d, name=f"stats{k}")(feats) for k, d in enumerate(self.stat_dims))
    corruption = nn.Dense(len(CORRUPTIONS), name="corruption")(feats)
    return feats, logits, stats, corruption


def trunk(x, width: int):
  """The feature networks' trunk, called inside a compact module: three conv stages of ``width``, ``2 width``,
  ``4 width`` (two 3x3 conv + GroupNorm + ReLU each, 2x pooling between), then the global average pool
  [b, 4 width]. Parameter names ``conv{i}_{j}``/``norm{i}_{j}`` (the shipped weights' names)."""
  h = x
  for i, c in enumerate((width, 2 * width, 4 * width)):
    for j in range(2):
      h = nn.Conv(c, (3, 3), name=f"conv{i}_{j}")(h)
      h = nn.GroupNorm(num_groups=8, name=f"norm{i}_{j}")(h)
      h = nn.relu(h)
    if i < 2:
      h = avg_pool2(h)
  return h.mean(axis=(1, 2))


def to_input(rgb: np.ndarray | jax.Array, size: int = INPUT_SIZE) -> jax.Array:
  """uint8 RGB [n, h, w, 3] (any size) -> float [-1, 1] at size x size.

  Integer factors use block means (down) or pixel repetition (up), which add
  no blur: the network is trained to notice blur, and a 2x-upsampled scene
  through an antialiased linear resize scored farther from itself than from
  another scene. Other sizes fall back to an antialiased linear resize.
  """
  return resize(jnp.asarray(rgb, jnp.float32) / 127.5 - 1.0, size)


def resize(x, size: int):
  """Float images [n, h, w, c] (any channel count) at size x size, as ``to_input`` resizes them."""
  n, h, w, c = x.shape
  if h == w == size:
    return x
  if h == w and h % size == 0:
    f = h // size
    return x.reshape(n, size, f, size, f, c).mean(axis=(2, 4))
  if h == w and size % h == 0:
    f = size // h
    return x.repeat(f, axis=1).repeat(f, axis=2)
  return jax.image.resize(x, (n, size, size, c), "linear", antialias=True)


def save(path: str, params, meta: dict) -> None:
  """Writes the weights (``.npz``) and ``meta`` plus the weights' sha256 (``.json`` beside it)."""
  flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}
  buf = io.BytesIO()
  np.savez(buf, **flat)
  data = buf.getvalue()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:
    f.write(data)
  meta = dict(meta, sha256=hashlib.sha256(data).hexdigest())
  with open(_meta_path(path), "w") as f:
    json.dump(meta, f, indent=1, sort_keys=True)


def portable_path(path: str) -> str:
  """``path`` relative to the repository when it lies inside it (for records written to results/)."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  full = os.path.abspath(path)
  return os.path.relpath(full, root) if full.startswith(root + os.sep) else path


def _meta_path(path: str) -> str:
  return os.path.splitext(path)[0] + ".json"


class FeatureNet:
  """Loaded feature network: ``features(rgb_uint8) -> float64 [n, d]``.

  Args:
    path: an ``.npz`` written by ``save`` with its ``.json`` beside it
      (default: the shipped weights).
    mesh: device mesh to shard batches over (default: all devices).
    chunk: images per device per call.
  """

  def __init__(self, path: str | None = None, mesh=None, chunk: int = 64):
    path = path or DEFAULT_WEIGHTS
    self.path = path
    if not os.path.isfile(path) or not os.path.isfile(_meta_path(path)):
      raise FileNotFoundError(
        f"feature network {path!r}: needs the .npz weights and {os.path.basename(_meta_path(path))!r} beside them; "
        "retrain with `python tools/train_feature_net.py`"
      )
    with open(path, "rb") as f:
      data = f.read()
    with open(_meta_path(path)) as f:
      self.meta = json.load(f)
    digest = hashlib.sha256(data).hexdigest()
    if digest != self.meta.get("sha256"):
      raise ValueError(
        f"feature network {path!r}: sha256 {digest[:12]}... does not match its metadata "
        f"({str(self.meta.get('sha256'))[:12]}...); the file is corrupt or was replaced"
      )
    with np.load(io.BytesIO(data)) as z:
      flat = {tuple(k.split("/")): jnp.asarray(z[k]) for k in z.files}
    self.params = traverse_util.unflatten_dict(flat)
    self.net = SceneFeatureNet(len(self.meta["kinds"]), tuple(self.meta["stat_dims"]), self.meta["width"])
    self.input_size = self.meta["input_size"]
    self.mesh = mesh or parallel.make_mesh(-1)
    self.chunk = chunk
    shard = self._shard = parallel.batch_sharded(self.mesh)

    def embed(p, rgb):
      feats, _, _, corruption = self.net.apply(p, to_input(rgb, self.input_size))
      return feats, corruption.argmax(-1)

    self._apply = jax.jit(embed, in_shardings=(parallel.replicated(self.mesh), shard), out_shardings=shard)

  @property
  def dim(self) -> int:
    return 4 * self.meta["width"]

  def features(self, rgb: np.ndarray) -> np.ndarray:
    """Features of uint8 RGB scenes [n, h, w, 3] as float64 [n, dim]."""
    return self.embed(rgb)[0]

  def embed(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 [n, dim], corruption verdict int [n]) of uint8 RGB scenes [n, h, w, 3].

    The verdict indexes ``CORRUPTIONS``: what the corruption head thinks was
    done to each scene (0: clean).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[-1] != 3:
      raise ValueError(f"feature network input: expected uint8 [n, h, w, 3], got {rgb.dtype} {rgb.shape}")
    n, k = len(rgb), self.mesh.devices.size
    step = min(self.chunk, -(-n // k)) * k  # small sets are not padded up to a full chunk
    feats, verdicts = [np.zeros((0, self.dim))], [np.zeros((0,), np.int32)]
    for i in range(0, n, step):
      part = rgb[i : i + step]
      pad = step - len(part)
      if pad:
        part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), np.uint8)])
      f, v = self._apply(self.params, parallel.put_global(part, self._shard))
      feats.append(parallel.to_host(f)[: step - pad])
      verdicts.append(parallel.to_host(v)[: step - pad])
    return np.concatenate(feats).astype(np.float64), np.concatenate(verdicts)

  def verdict_fractions(self, verdicts: np.ndarray) -> dict[str, float]:
    """``{'looks/clean': f, 'looks/noise': f, ...}``: the share of each corruption verdict."""
    return {f"looks/{c}": float(np.mean(verdicts == i)) for i, c in enumerate(CORRUPTIONS)}

  def logits(self, rgb: np.ndarray) -> np.ndarray:
    """Scene-kind logits [n, num_kinds] (names in ``meta['kinds']``), unsharded; for checks."""
    return np.asarray(self.net.apply(self.params, to_input(rgb, self.input_size))[1])
