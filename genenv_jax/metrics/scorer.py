"""Scoring generated scenes against real ones: the world's rules and the feature-space distances.

Used inside the training loop (every ``train.eval_every`` steps) and by
``genenv_jax.evaluation`` (``eval.py``).
"""

from __future__ import annotations

import jax
import numpy as np

from genenv_jax import layout as layout_lib
from genenv_jax import logs, parallel
from genenv_jax.metrics import feature_metrics, features, scene_metrics, two_sample


class SceneEvaluator:
  """Holds the real reference (rule statistics, features) and scores generated batches.

  Args:
    world: the scene world (``None`` for user data: no rules, no statistics).
    train_source, test_source: data sources.
    layout: the model tensor's ``layout.Layout``.
    n: how many scenes to compare.
    feature_net: a ``metrics.features.FeatureNet`` for FD, KID and
      precision/recall (``None``: rule metrics only).
    pixels: draw the real sets and score C2ST on pixels even with no world
      and no feature network (user data scored in its own space).

  ``reference`` holds the real held-out scenes' scores (``real/...``): the
  test split judged against the train split, the best a model can reach.
  """

  def __init__(self, world, train_source, test_source, layout: layout_lib.Layout, n, feature_net=None, pixels=False):
    self.world, self.layout, self.n = world, layout, n
    self.feature_net = feature_net
    self.reference = {}
    if world is None and feature_net is None and not pixels:
      return
    ref = self._decoded_real(train_source, n, seed=1)
    held = self._decoded_real(test_source, n, seed=2)
    self.reference_decoded, self.held_decoded = ref, held  # what other feature spaces compare (own_space)
    self.mesh = feature_net.mesh if feature_net is not None else None
    self.ref_pixels = two_sample.pixel_statistics(ref["rgb"])
    real = {"c2st/pixels": two_sample.c2st(self.ref_pixels, two_sample.pixel_statistics(held["rgb"]), self.mesh)}
    if world is not None:
      self.ref_stats = scene_metrics.per_scene(world, *scene_metrics.scene_maps(ref, world))[1]
      real.update(scene_metrics.evaluate(world, *scene_metrics.scene_maps(held, world), self.ref_stats))
    if feature_net is not None:
      self.ref_features = feature_net.features(ref["rgb"])
      real.update(self._feature_scores(held["rgb"]))
    self.reference = {f"real/{k}": v for k, v in real.items()}

  @staticmethod
  def real_order(size: int, seed: int) -> np.ndarray:
    """The seeded order real scenes are drawn in: the first n are the set of n."""
    return np.random.default_rng(seed).permutation(size)

  def _decoded_real(self, source, n, seed):
    """n scenes of ``source`` drawn at random (seeded): a folder listed by class is not read class by class."""
    idx = np.sort(self.real_order(len(source), seed)[: min(n, len(source))])
    return self.layout.decode(self.layout.encode(source.get([int(i) for i in idx])))

  def score(self, x: np.ndarray) -> dict[str, float]:
    """Metrics of generated tensors [n, h, w, C] in [-1, 1]."""
    return self.score_decoded(self.layout.decode(x))

  def score_decoded(self, decoded: dict[str, np.ndarray]) -> dict[str, float]:
    """Metrics of decoded scenes (``layout.Layout.decode``'s dict)."""
    out = {}
    if self.world is not None:
      out.update(scene_metrics.evaluate(self.world, *scene_metrics.scene_maps(decoded, self.world), self.ref_stats))
    if self.reference:
      out["c2st/pixels"] = two_sample.c2st(self.ref_pixels, two_sample.pixel_statistics(decoded["rgb"]), self.mesh)
    if self.feature_net is not None:
      out.update(self._feature_scores(decoded["rgb"]))
    return out

  def _feature_scores(self, rgb: np.ndarray) -> dict[str, float]:
    """FD, KID, precision/recall against the reference, and the corruption head's verdicts."""
    feats, verdicts = self.feature_net.embed(rgb)
    out = feature_metrics.compare(self.ref_features, feats, self.feature_net.mesh)
    out["c2st/features"] = two_sample.c2st(self.ref_features, feats, self.feature_net.mesh)
    out.update(self.feature_net.verdict_fractions(verdicts))
    return out

  def grid(self, x: np.ndarray, path: str, cols: int) -> None:
    logs.save_grid(path, self.layout.tiles(self.layout.decode(x)), cols)


def make_feature_net(spec: str, mesh=None):
  """``'default'``: the shipped network; ``'none'``: no feature metrics; else a path to ``.npz`` weights."""
  if spec == "none":
    return None
  return features.FeatureNet(None if spec == "default" else spec, mesh)


def sample_batches(sample_fn, params, key, n: int, batch: int) -> np.ndarray:
  """Draws n samples in fixed-size chunks; chunk j uses fold_in(key, j) (the family's default temperature)."""
  out = []
  for j in range(-(-n // batch)):
    out.append(parallel.to_host(sample_fn(params, jax.random.fold_in(key, j), batch)))
  return np.concatenate(out)[:n]
