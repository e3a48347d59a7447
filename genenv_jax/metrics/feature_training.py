"""Trains the scene feature network on the built-in worlds, reproducibly.

The data are scenes of every registered world drawn from a seed range
disjoint from every dataset split (``SEED_OFFSET``), at the feature network's
input size. Half of each batch is corrupted (``corrupt``). Targets: which
corruption, if any, was applied; and for the clean half the scene's kind
(world and scene class, e.g. ``city/coast``) and each world's statistics,
standardised by the training scenes' mean and std. Everything is a pure function of the arguments, so the
same command retrains the same weights (bit-equal on the same machine and
JAX version).
"""

from __future__ import annotations

import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genenv_jax import scenes
from genenv_jax.metrics import features

SEED_OFFSET = 2 * 10**9  # train split: 0.., test split: 10**9.., feature net: 2*10**9..
CORRUPTION_WEIGHT = 0.5


def make_data(num_per_world: int, seed_base: int, size: int = features.INPUT_SIZE):
  """Scenes of every world: (rgb uint8 [n,h,w,3], kind int [n], world index [n], stats list, kinds, worlds)."""
  rgb, kind, world_idx, stats = [], [], [], []
  kinds, names = [], sorted(scenes.WORLDS)
  for wi, name in enumerate(names):
    world = scenes.get_world(name)
    first = len(kinds)
    kinds += [f"{name}/{c}" for c in world.scene_class_names]
    for s in range(num_per_world):
      sc = world.generate(seed_base + s, size)
      rgb.append(sc.rgb)
      kind.append(first + sc.scene_class)
      world_idx.append(wi)
      stats.append(np.asarray(world.statistics(sc.labels, sc.height), np.float32))
  return np.stack(rgb), np.array(kind, np.int32), np.array(world_idx, np.int32), stats, kinds, names


def _stat_targets(stats, world_idx, num_worlds, mean=None, std=None):
  """Per-world standardised statistics as one padded [n, max_dim] array plus a mask."""
  dims = [len(next(s for s, w in zip(stats, world_idx) if w == k)) for k in range(num_worlds)]
  if mean is None:
    mean = [np.mean([s for s, w in zip(stats, world_idx) if w == k], 0) for k in range(num_worlds)]
    std = [np.std([s for s, w in zip(stats, world_idx) if w == k], 0) + 1e-3 for k in range(num_worlds)]
  width = max(dims)
  y = np.zeros((len(stats), width), np.float32)
  for i, (s, w) in enumerate(zip(stats, world_idx)):
    y[i, : dims[w]] = (s - mean[w]) / std[w]
  return y, dims, mean, std


def corrupt(key, x):
  """Corrupts half of a batch x [b, h, w, c] in [-1, 1]; returns (x', corruption index per image).

  Index 0 is clean, with imperceptible noise (sigma up to 3 levels of 255)
  half the time; the others follow ``features.CORRUPTIONS``, each at a visible
  strength: Gaussian noise (sigma 8-40 levels), blur (a 3x3 box blur blended
  in at 50-100%), colour quantisation (4-12 levels), a colour shift
  (per-channel gain and offset of 0.1-0.3) and a patch swap (a random
  rectangle from another scene of the batch). These are artefacts generators
  make; learning to name them makes the features register texture and
  coherence, not only scene kind and layout, while staying blind to what a
  viewer cannot see (a network asked to spot 2-level noise made FD and
  precision saturate on near-real images).
  """
  b, h, w, c = x.shape  # any channel count (the own-space encoder corrupts gray and height channels too)
  ks = jax.random.split(key, 9)
  kinds = len(features.CORRUPTIONS)
  which = jnp.where(jax.random.bernoulli(ks[0], 0.5, (b,)), 0, jax.random.randint(ks[1], (b,), 1, kinds))
  u = jax.random.uniform(ks[2], (b, 1, 1, 1))
  eps = jax.random.normal(ks[3], x.shape)
  faint = jax.random.bernoulli(ks[7], 0.5, (b, 1, 1, 1)) * 3 * u
  clean = x + eps * faint / 127.5
  noise = x + eps * (8 + 32 * u) / 127.5
  p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  box = sum(p[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9
  blur = x + (0.5 + 0.5 * u) * (box - x)
  levels = jnp.round(4 + 8 * u)
  quant = jnp.round((x + 1) / 2 * (levels - 1)) / (levels - 1) * 2 - 1
  gain_off = jax.random.uniform(ks[4], (b, 1, 1, 2, c), minval=0.1, maxval=0.3)
  sign = jnp.sign(jax.random.normal(ks[8], (b, 1, 1, 2, c)))
  colour = x * (1 + sign[..., 0, :] * gain_off[..., 0, :]) + sign[..., 1, :] * gain_off[..., 1, :]
  corner = jax.random.uniform(ks[5], (b, 2))
  size = 0.25 + 0.5 * jax.random.uniform(ks[6], (b, 2))
  rows = jnp.arange(h)[None, :, None] / h
  cols = jnp.arange(w)[None, None, :] / w
  inside = (
    (rows >= corner[:, 0, None, None] * (1 - size[:, 0, None, None]))
    & (rows < corner[:, 0, None, None] * (1 - size[:, 0, None, None]) + size[:, 0, None, None])
    & (cols >= corner[:, 1, None, None] * (1 - size[:, 1, None, None]))
    & (cols < corner[:, 1, None, None] * (1 - size[:, 1, None, None]) + size[:, 1, None, None])
  )
  swap = jnp.where(inside[..., None], jnp.roll(x, 1, axis=0), x)
  options = jnp.stack([clean, noise, blur, quant, colour, swap])  # [kinds, b, h, w, c]
  out = jnp.take_along_axis(options, which[None, :, None, None, None], axis=0)[0]
  return jnp.clip(out, -1, 1), which


def train(
  num_per_world: int = 5000,
  num_val_per_world: int = 500,
  steps: int = 3000,
  batch: int = 128,
  lr: float = 2e-3,
  width: int = 32,
  seed: int = 0,
  input_size: int = features.INPUT_SIZE,
):
  """Trains the network; returns (params, meta) with validation accuracy and stats R^2 in ``meta``."""
  t0 = time.time()
  x, kind, widx, stats, kinds, names = make_data(num_per_world, SEED_OFFSET, input_size)
  xv, kv, wv, sv, _, _ = make_data(num_val_per_world, SEED_OFFSET + num_per_world, input_size)
  y, dims, mean, std = _stat_targets(stats, widx, len(names))
  yv, _, _, _ = _stat_targets(sv, wv, len(names), mean, std)
  logging.info("feature net data: %d train / %d val scenes in %.0f s", len(x), len(xv), time.time() - t0)
  net = features.SceneFeatureNet(len(kinds), tuple(dims), width)
  params = net.init(jax.random.PRNGKey(seed), features.to_input(x[:2], input_size))
  tx = optax.adam(optax.cosine_decay_schedule(lr, steps))
  opt = tx.init(params)

  def loss_fn(p, key, xb, kb, wb, yb):
    xc, which = corrupt(key, features.to_input(xb, input_size))
    _, logits, preds, corr = net.apply(p, xc)
    clean = (which == 0).astype(jnp.float32)
    n_clean = jnp.maximum(clean.sum(), 1.0)
    ce = (clean * optax.softmax_cross_entropy_with_integer_labels(logits, kb)).sum() / n_clean
    mse = 0.0
    for k, pred in enumerate(preds):
      sel = clean * (wb == k)
      err = ((pred - yb[:, : dims[k]]) ** 2).mean(-1)
      mse = mse + (sel * err).sum() / jnp.maximum(sel.sum(), 1.0)
    corr_ce = optax.softmax_cross_entropy_with_integer_labels(corr, which).mean()
    return ce + mse / len(preds) + CORRUPTION_WEIGHT * corr_ce, (ce, mse / len(preds), corr_ce)

  @jax.jit
  def step(p, o, key, xb, kb, wb, yb):
    (_, aux), g = jax.value_and_grad(loss_fn, has_aux=True)(p, key, xb, kb, wb, yb)
    upd, o = tx.update(g, o, p)
    return optax.apply_updates(p, upd), o, aux

  rng = np.random.default_rng(seed)
  key = jax.random.PRNGKey(seed + 1)
  for s in range(steps):
    idx = rng.integers(0, len(x), batch)
    params, opt, (ce, mse, cc) = step(params, opt, jax.random.fold_in(key, s), x[idx], kind[idx], widx[idx], y[idx])
    if (s + 1) % 200 == 0:
      logging.info("feature net step %d: kind ce %.3f stats mse %.3f corruption ce %.3f", s + 1, ce, mse, cc)

  @jax.jit
  def apply(p, k, xb):
    xc, which = corrupt(k, features.to_input(xb, input_size))
    return net.apply(p, features.to_input(xb, input_size)), net.apply(p, xc)[3], which

  logits, preds, corr_ok = [], [[] for _ in dims], []
  for i in range(0, len(xv), 500):
    (_, lg, pr, _), corr, which = apply(params, jax.random.PRNGKey(10**6 + i), xv[i : i + 500])
    logits.append(np.asarray(lg))
    corr_ok.append(np.asarray(corr).argmax(-1) == np.asarray(which))
    for k in range(len(dims)):
      preds[k].append(np.asarray(pr[k]))
  logits = np.concatenate(logits)
  acc = float((logits.argmax(-1) == kv).mean())
  world_of_kind = np.array([names.index(k.split("/")[0]) for k in kinds])
  world_acc = float((world_of_kind[logits.argmax(-1)] == wv).mean())
  r2 = {}
  for k, name in enumerate(names):
    sel = wv == k
    pred = np.concatenate(preds[k])[sel]
    target = yv[sel, : dims[k]]
    r2[name] = float(1 - ((pred - target) ** 2).sum() / ((target - target.mean(0)) ** 2).sum())
  meta = {
    "kinds": kinds,
    "worlds": names,
    "world_versions": {n: scenes.get_world(n).version for n in names},
    "stat_dims": dims,
    "width": width,
    "input_size": input_size,
    "train": {
      "num_per_world": num_per_world,
      "num_val_per_world": num_val_per_world,
      "steps": steps,
      "batch": batch,
      "lr": lr,
      "seed": seed,
      "seed_offset": SEED_OFFSET,
      "jax_version": jax.__version__,
      "seconds": round(time.time() - t0, 1),
    },
    "val": {
      "kind_accuracy": acc,
      "world_accuracy": world_acc,
      "stats_r2": r2,
      "corruption_accuracy": float(np.concatenate(corr_ok).mean()),
    },
  }
  return params, meta
