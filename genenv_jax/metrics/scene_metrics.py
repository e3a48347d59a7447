"""Judging scenes with their world's rules: validity rate and statistics distance."""

from __future__ import annotations

import numpy as np

from genenv_jax.scenes import base as scene_base


def scene_maps(decoded: dict[str, np.ndarray], world) -> tuple[np.ndarray, np.ndarray | None]:
  """Label and height maps of decoded samples; labels come from RGB when the model has none."""
  labels = decoded.get("labels")
  if labels is None:
    labels = scene_base.rgb_to_labels(decoded["rgb"], world.palette)
  return labels, decoded.get("height")


def per_scene(world, labels: np.ndarray, height: np.ndarray | None):
  """Rules and statistics for each scene: ([n, rules] bool, [n, stats] float)."""
  valid, stats = [], []
  for i in range(len(labels)):
    h = None if height is None else height[i]
    v = world.validity(labels[i], h)
    valid.append([v[r] for r in world.rule_names])
    stats.append(world.statistics(labels[i], h))
  return np.array(valid, bool), np.stack(stats)


def stats_distance(stats: np.ndarray, ref_stats: np.ndarray) -> float:
  """Mean over statistics of (|mean difference| + |std difference|) / std of the reference.

  0 for identical distributions; in units of the real scenes' spread, so each
  statistic counts alike whatever its scale.
  """
  mu_r, sd_r = ref_stats.mean(0), ref_stats.std(0) + 1e-6
  mu_g, sd_g = stats.mean(0), stats.std(0)
  return float(np.mean((np.abs(mu_g - mu_r) + np.abs(sd_g - sd_r)) / sd_r))


def evaluate(world, labels, height, ref_stats: np.ndarray) -> dict[str, float]:
  """Validity rate (all rules), each rule's pass rate and the statistics distance."""
  valid, stats = per_scene(world, labels, height)
  out = {"validity": float(valid.all(1).mean()), "stats_distance": stats_distance(stats, ref_stats)}
  for j, name in enumerate(world.rule_names):
    out[f"rule/{name}"] = float(valid[:, j].mean())
  return out
