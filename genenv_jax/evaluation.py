"""Evaluation during training: samples from the EMA params, judged by the world's rules."""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from genenv_jax import logs, parallel
from genenv_jax.data import pipeline
from genenv_jax.metrics import baselines, feature_metrics, features, scene_metrics


class SceneEvaluator:
  """Holds the real reference (rule statistics, features) and scores generated batches.

  Args:
    world: the scene world (``None`` for user data: no rules, no statistics).
    train_source, test_source: data sources.
    channels, num_label_classes: the model tensor's layout.
    n: how many scenes to compare.
    feature_net: a ``metrics.features.FeatureNet`` for FD, KID and
      precision/recall (``None``: rule metrics only).

  ``reference`` holds the real held-out scenes' scores (``real/...``): the
  test split judged against the train split, the best a model can reach.
  """

  def __init__(self, world, train_source, test_source, channels, num_label_classes, n, feature_net=None):
    self.world, self.channels, self.k, self.n = world, tuple(channels), num_label_classes, n
    self.feature_net = feature_net
    self.reference = {}
    if world is None and feature_net is None:
      return
    ref = self._decoded_real(train_source, n)
    held = self._decoded_real(test_source, n)
    real = {}
    if world is not None:
      self.ref_stats = scene_metrics.per_scene(world, *scene_metrics.scene_maps(ref, world))[1]
      real.update(scene_metrics.evaluate(world, *scene_metrics.scene_maps(held, world), self.ref_stats))
    if feature_net is not None:
      self.ref_features = feature_net.features(ref["rgb"])
      real.update(self._feature_scores(held["rgb"]))
    self.reference = {f"real/{k}": v for k, v in real.items()}

  def _decoded_real(self, source, n):
    idx = list(range(min(n, len(source))))
    raw = source.get(idx)
    return pipeline.decode(pipeline.encode(raw, self.channels, self.k), self.channels, self.k)

  def score(self, x: np.ndarray) -> dict[str, float]:
    """Metrics of generated tensors [n, h, w, C] in [-1, 1]."""
    decoded = pipeline.decode(x, self.channels, self.k)
    out = {}
    if self.world is not None:
      out.update(scene_metrics.evaluate(self.world, *scene_metrics.scene_maps(decoded, self.world), self.ref_stats))
    if self.feature_net is not None:
      out.update(self._feature_scores(decoded["rgb"]))
    return out

  def _feature_scores(self, rgb: np.ndarray) -> dict[str, float]:
    """FD, KID, precision/recall against the reference, and the corruption head's verdicts."""
    feats, verdicts = self.feature_net.embed(rgb)
    out = feature_metrics.compare(self.ref_features, feats, self.feature_net.mesh)
    out.update(self.feature_net.verdict_fractions(verdicts))
    return out

  def grid(self, x: np.ndarray, path: str, cols: int, palette) -> None:
    decoded = pipeline.decode(x, self.channels, self.k)
    logs.save_grid(path, logs.scene_tiles(decoded, palette), cols)


def make_feature_net(spec: str, mesh=None):
  """``'default'``: the shipped network; ``'none'``: no feature metrics; else a path to ``.npz`` weights."""
  if spec == "none":
    return None
  return features.FeatureNet(None if spec == "default" else spec, mesh)


def write_json(path: str, record: dict) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def sample_batches(sample_fn, params, key, n: int, batch: int) -> np.ndarray:
  """Draws n samples in fixed-size chunks; chunk j uses fold_in(key, j)."""
  out = []
  for j in range(-(-n // batch)):
    out.append(parallel.to_host(sample_fn(params, jax.random.fold_in(key, j), batch)))
  return np.concatenate(out)[:n]


def evaluate_workdir(
  workdir: str, num_samples: int, step: int | None = None, batch: int = 64, feature_net: str = "default", mesh=None
) -> dict:
  """Scores a trained workdir beside its calibration, all on ``num_samples`` scenes per set.

  * ``model``: EMA samples of the checkpoint.
  * ``real``: held-out real scenes (test split) against the same train-split
    reference: the best a model can score.
  * ``untrained``: the same family freshly initialised: the worst.

  Metrics: FD, KID (mean and std over subsets), precision and recall in the
  scene feature network's space; validity, each rule's pass rate and the
  statistics distance for built-in worlds; test bits/dim for likelihood
  families beside an independent per-pixel baseline. Sampling and features
  are sharded over ``mesh`` (default: every device). Writes
  ``WORKDIR/eval_results.json``.
  """
  from genenv_jax import trained as trained_lib
  from genenv_jax.data import sources

  mesh = mesh or parallel.make_mesh(-1)
  parallel.check_batch(batch, mesh)
  model = trained_lib.load(workdir, step)
  cfg = model.config
  fnet = make_feature_net(feature_net, mesh)
  if model.world is None and fnet is None:
    raise ValueError(f"workdir={workdir!r}: trained on user data, which has no scene rules; use a feature network")
  train_src, test_src = sources.make_source(cfg.data, "train"), sources.make_source(cfg.data, "test")
  ev = SceneEvaluator(model.world, train_src, test_src, model.channels, model.num_label_classes, num_samples, fnet)
  repl = parallel.replicated(mesh)
  sample = jax.jit(model.family.sample, static_argnums=(2,), out_shardings=parallel.batch_sharded(mesh))
  key = jax.random.PRNGKey(0xE7A1)
  x = sample_batches(sample, jax.device_put(model.params, repl), key, num_samples, batch)
  dummy = {
    "x": np.zeros((2, model.spec.image_size, model.spec.image_size, model.spec.channels), np.float32),
    "label": np.zeros((2,), np.int32),
  }
  fresh = jax.jit(model.family.init, out_shardings=repl)(jax.random.PRNGKey(cfg.seed), dummy).ema_params
  x0 = sample_batches(sample, fresh, key, num_samples, batch)
  real = {k[len("real/") :]: v for k, v in ev.reference.items()}
  likelihood = test_likelihood(model, test_src, batch, mesh)
  result = {
    "workdir": workdir,
    "checkpoint_step": model.step,
    "num_samples": num_samples,
    "num_devices": int(mesh.devices.size),
    "feature_net": None if fnet is None else {"path": fnet.path, "sha256": fnet.meta["sha256"]},
    "model": ev.score(x),
    "real": real,
    "untrained": ev.score(x0),
  }
  if likelihood:
    result["test_likelihood"] = likelihood
    result["baseline_independent_pixel_bpd"] = baselines.independent_pixel_bpd(
      train_src, test_src, model.channels, model.num_label_classes
    )
  result["grids"] = write_family_grids(model, test_src, x, os.path.join(workdir, "eval"))
  write_json(os.path.join(workdir, "eval_results.json"), result)
  return result


def test_likelihood(model, test_source, batch: int, mesh) -> dict[str, float]:
  """The family's bits/dim metrics averaged over the whole test split (empty for GANs)."""
  from genenv_jax.families import base as fam_base

  loader = pipeline.Loader(test_source, model.channels, model.num_label_classes, 0, batch, parallel.batch_sharded(mesh))
  state = fam_base.TrainState(
    step=jax.numpy.zeros((), jax.numpy.int32),
    params=model.train_params,
    opt_state=None,
    ema_params=model.params,
    rng=jax.random.PRNGKey(0),
    skipped=jax.numpy.zeros((), jax.numpy.int32),
  )
  state = jax.device_put(state, parallel.replicated(mesh))
  step = jax.jit(model.family.eval_step)
  # Dispatch every batch, then fetch once: no host sync per batch.
  per_batch = [step(state, loader.global_batch_at(s)) for s in range(len(test_source) // batch)]
  per_batch = jax.device_get(per_batch)
  keys = [k for k in (per_batch[0] if per_batch else {}) if "bpd" in k]
  return {k: float(np.mean([m[k] for m in per_batch])) for k in keys}


def write_family_grids(model, test_source, samples: np.ndarray, out_dir: str, n: int = 8, steps: int = 8) -> list[str]:
  """PNG grids: prior samples, samples above real scenes, and a VAE's reconstructions and interpolations.

  Args:
    model: a ``trained.Trained``.
    test_source: real scenes for the comparisons.
    samples: model samples [>= n*n, h, w, C] in [-1, 1] (the ones that were scored).
    out_dir: where the PNGs go.

  Returns the paths written.
  """
  extras = model.family.extras or {}
  palette = model.world.palette if model.world is not None else np.zeros((1, 3), np.uint8)
  raw = test_source.get(list(range(2 * n)))
  x = pipeline.encode(raw, model.channels, model.num_label_classes)
  paths = []

  def tiles(t):
    return logs.scene_tiles(pipeline.decode(np.asarray(t), model.channels, model.num_label_classes), palette)

  if "reconstruct" in extras:
    rec = jax.jit(extras["reconstruct"])(model.params, x[:n])
    pairs = np.stack([tiles(x[:n]), tiles(rec)], 1).reshape(2 * n, *tiles(rec).shape[1:])
    paths.append(os.path.join(out_dir, "reconstructions.png"))
    logs.save_grid(paths[-1], pairs, cols=2)  # each row: real | reconstruction
  if "interpolate" in extras:
    path = jax.jit(extras["interpolate"], static_argnums=(3,))(model.params, x[:n], x[n : 2 * n], steps)
    flat = np.asarray(path).reshape(n * steps, *path.shape[2:])
    paths.append(os.path.join(out_dir, "interpolations.png"))
    logs.save_grid(paths[-1], tiles(flat), cols=steps)  # each row: one pair, left to right
  prior = samples[: n * n]
  paths.append(os.path.join(out_dir, "prior_samples.png"))
  logs.save_grid(paths[-1], tiles(prior), cols=n)
  # RGB only, 4x nearest-neighbour: top row samples, bottom row real test scenes.
  rgb = pipeline.decode(np.asarray(prior[:n]), model.channels, model.num_label_classes)["rgb"]
  both = np.concatenate([rgb, raw["image"][:n]]).repeat(4, 1).repeat(4, 2)
  paths.append(os.path.join(out_dir, "samples_vs_real.png"))
  logs.save_grid(paths[-1], both, cols=n)
  return paths
