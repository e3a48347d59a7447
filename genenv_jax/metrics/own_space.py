"""A feature space learned from the run's own data, for data the shipped feature network does not know.

The shipped scene feature network (``metrics.features``) was trained on the
built-in worlds; on a user's photographs, heightmaps or sprites it calls few
real images clean and its FD/KID/precision/recall say little. ``eval.py``
then trains a small encoder here, on the run's own training split, and
reports the same distances in its space under ``*_own`` keys
(``fd_own``, ``kid_own``, ``precision_own``, ``recall_own``) beside the
shipped ones, for the model, the real held-out images and the untrained
model.

The encoder is the feature network's trunk at half its width (three conv
stages, 64 pooled features) read on every channel the user's data has: the image (RGB or one
gray channel) and the height map. It is trained self-supervised, as SimCLR:
two views of each image, made by a random translation (reflect-padded by an
eighth of the side) and a left-right flip, are pulled together and pushed
from the rest of the batch (NT-Xent); and, as the shipped network is,
it names which of the library's corruptions (``feature_training.corrupt``:
noise, blur, quantisation, a colour shift, a patch swap) was applied to an
image, so the features notice the artefacts generators make rather than
only what the images show. No colour jitter: a colour shift must stay
visible to the distances.

Training is a pure function of the training images and the settings
(seeded batches and keys), cached in the workdir (``eval/own_encoder.npz``
with its ``.json``) under a digest of both, so a second evaluation reuses it
and a changed split retrains.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from genenv_jax import layout as layout_lib
from genenv_jax import parallel
from genenv_jax.metrics import feature_metrics, feature_training, features
from genenv_jax.metrics.features import CORRUPTIONS

VERSION = 1
INPUT_SIZE = 32
TEMPERATURE = 0.2  # NT-Xent
CORRUPTION_WEIGHT = 0.5
MODES = ("auto", "always", "never")
# Training steps (batch 96). GENENV_OWN_SPACE_STEPS overrides it: the test suite sets a few steps, so
# evaluations that pass through the own space do not each train the full encoder.
STEPS = int(os.environ.get("GENENV_OWN_SPACE_STEPS", "500"))


class OwnEncoder(nn.Module):
  """The feature network's trunk at half its width (32x32 -> 8x8, 64 pooled features: a CPU trains it in a
  minute or two) with a SimCLR projection and a corruption head."""

  width: int = 16

  @nn.compact
  def __call__(self, x):
    feats = features.trunk(x, self.width)
    z = nn.Dense(128, name="proj0")(feats)
    z = nn.Dense(64, name="proj1")(nn.relu(z))
    corruption = nn.Dense(len(CORRUPTIONS), name="corruption")(feats)
    return feats, z, corruption


def planes(layout: layout_lib.Layout) -> list[str]:
  """The decoded values the encoder reads, in order: the image (``rgb``, ``gray``, or ``height`` alone)
  and the height map."""
  image = layout.channels[0] if layout.channels[0] != "rgb" else "rgb"
  out = [image]
  if "height" in layout.channels and image != "height":
    out.append("height")
  return out


def to_input(decoded: dict, names: list[str], size: int = INPUT_SIZE) -> np.ndarray:
  """Decoded scenes -> float32 [n, size, size, C] in [-1, 1] (block means or repetition for whole factors)."""
  parts = []
  for k in names:
    v = np.asarray(decoded[k])
    v = v.astype(np.float32) / 127.5 - 1.0 if v.dtype == np.uint8 else v.astype(np.float32) * 2.0 - 1.0
    parts.append(v if v.ndim == 4 else v[..., None])
  return np.asarray(features.resize(np.concatenate(parts, axis=-1), size))


def _views(key, x):
  """A random translation (reflect padding of size/8) and a left-right flip per image."""
  b, h, w, _ = x.shape
  p = h // 8
  k1, k2 = jax.random.split(key)
  padded = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
  off = jax.random.randint(k1, (b, 2), 0, 2 * p + 1)
  crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(padded, off)
  flip = jax.random.bernoulli(k2, 0.5, (b, 1, 1, 1))
  return jnp.where(flip, crop[:, :, ::-1], crop)


def nt_xent(z1, z2, temperature: float = TEMPERATURE):
  """SimCLR's loss: each view's partner is its positive, the other 2b - 2 views its negatives."""
  z = jnp.concatenate([z1, z2])
  z = z / jnp.linalg.norm(z, axis=-1, keepdims=True).clip(1e-6)
  sim = z @ z.T / temperature
  n = z.shape[0]
  sim = jnp.where(jnp.eye(n, dtype=bool), -1e9, sim)
  partner = jnp.concatenate([jnp.arange(n // 2) + n // 2, jnp.arange(n // 2)])
  return optax.softmax_cross_entropy_with_integer_labels(sim, partner).mean()


def train(x: np.ndarray, steps: int = 500, batch: int = 96, lr: float = 2e-3, seed: int = 0, width: int = 16):
  """Trains the encoder on images ``x`` [n, 32, 32, C] in [-1, 1]; returns (params, log)."""
  net = OwnEncoder(width)
  params = net.init(jax.random.PRNGKey(seed), jnp.asarray(x[:2]))
  tx = optax.adam(optax.cosine_decay_schedule(lr, steps))
  opt = tx.init(params)

  def loss_fn(p, key, xb):
    k1, k2, k3 = jax.random.split(key, 3)
    _, z1, _ = net.apply(p, _views(k1, xb))
    _, z2, _ = net.apply(p, _views(k2, xb))
    xc, which = feature_training.corrupt(k3, xb)
    corr = net.apply(p, xc)[2]
    con = nt_xent(z1, z2)
    cce = optax.softmax_cross_entropy_with_integer_labels(corr, which).mean()
    return con + CORRUPTION_WEIGHT * cce, (con, cce)

  @functools.partial(jax.jit, compiler_options=_kernels())
  def step(p, o, key, xs, idx):
    (_, aux), g = jax.value_and_grad(loss_fn, has_aux=True)(p, key, xs[idx])  # the batch gathered on device
    upd, o = tx.update(g, o, p)
    return optax.apply_updates(p, upd), o, aux

  rng = np.random.default_rng(seed)
  key = jax.random.PRNGKey(seed + 1)
  log = []
  xs = jnp.asarray(x)  # the images go to the device once
  for s in range(steps):
    idx = rng.integers(0, len(x), min(batch, len(x)))
    params, opt, (con, cce) = step(params, opt, jax.random.fold_in(key, s), xs, jnp.asarray(idx, jnp.int32))
    if (s + 1) % 100 == 0 or s + 1 == steps:
      log.append({"step": s + 1, "nt_xent": float(con), "corruption_ce": float(cce)})
  return params, log


def _kernels():
  """Multi-threaded Eigen convolutions on a CPU (``cpu_kernels``: about twice XLA:CPU's default there)."""
  from genenv_jax import cpu_kernels

  return cpu_kernels.compiler_options("eigen", jax.devices()[0].platform)


def _digest(x: np.ndarray, settings: dict) -> str:
  h = hashlib.sha256(np.ascontiguousarray(x).tobytes())
  h.update(json.dumps(settings, sort_keys=True).encode())
  return h.hexdigest()


class OwnSpace:
  """A trained own-data encoder: ``features(decoded)`` and ``compare`` under ``*_own`` keys.

  Args:
    train_decoded: the training split's decoded scenes (``Layout.decode``'s dict).
    layout: the run's layout (which planes the encoder reads).
    cache_dir: where ``own_encoder.npz`` is kept (None: no cache).
    mesh: for precision/recall.
  """

  def __init__(self, train_decoded: dict, layout, cache_dir: str | None, mesh=None, steps: int | None = None, seed=0):
    steps = STEPS if steps is None else steps
    self.names = planes(layout)
    self.mesh = mesh
    x = to_input(train_decoded, self.names)
    settings = {"version": VERSION, "steps": steps, "seed": seed, "planes": self.names, "images": len(x)}
    digest = _digest(x, settings)
    path = os.path.join(cache_dir, "own_encoder.npz") if cache_dir else None
    self.params, self.meta = _load(path, digest) if path else (None, None)
    if self.params is None:
      t0 = time.time()
      self.params, log = train(x, steps=steps, seed=seed)
      seconds = round(time.time() - t0, 1)
      self.meta = dict(settings, digest=digest, seconds=seconds, log=log, jax_version=jax.__version__)
      if path:
        features.save(path, self.params, self.meta)  # weights .npz, meta .json beside (with their sha256)
      logging.info("own-space encoder: trained on %d images in %.0f s", len(x), time.time() - t0)
    self.meta = dict(self.meta, cache=path)
    net = OwnEncoder()
    self._apply = jax.jit(lambda p, xb: net.apply(p, xb)[0], compiler_options=_kernels())

  def features(self, decoded: dict) -> np.ndarray:
    x = to_input(decoded, self.names)
    out = [np.asarray(self._apply(self.params, jnp.asarray(x[i : i + 256]))) for i in range(0, len(x), 256)]
    return np.concatenate(out).astype(np.float64)

  def compare(self, reference: np.ndarray, decoded: dict) -> dict[str, float]:
    """FD, KID, precision and recall of ``decoded`` against ``reference`` features, as ``*_own`` keys."""
    got = feature_metrics.compare(reference, self.features(decoded), self.mesh or parallel.make_mesh(-1))
    return {f"{k}_own": v for k, v in got.items()}


def _load(path: str, digest: str):
  """(params, meta) of a cached encoder trained on the same images and settings, else (None, None)."""
  meta_path = os.path.splitext(path)[0] + ".json"
  if not (os.path.isfile(path) and os.path.isfile(meta_path)):
    return None, None
  try:
    with open(meta_path) as f:
      meta = json.load(f)
    if meta.get("digest") != digest:
      return None, None
    with np.load(path) as z:
      flat = {tuple(k.split("/")): jnp.asarray(z[k]) for k in z.files}
  except (OSError, ValueError) as e:
    logging.warning("own-space encoder cache %s unreadable (%s): retraining", path, e)
    return None, None
  return traverse_util.unflatten_dict(flat), meta
