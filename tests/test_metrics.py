"""Metrics: statistics distance and the independent-pixel likelihood baseline."""

import math

import numpy as np

from genenv_jax.layout import Layout
from genenv_jax.metrics import baselines, scene_metrics


class _Source:
  def __init__(self, images):
    self.images = np.asarray(images, np.uint8)

  def __len__(self):
    return len(self.images)

  def get(self, idx):
    return {"image": self.images[idx]}


def test_independent_pixel_baseline_hand_computed():
  train = _Source(np.array([0, 0, 1])[:, None, None, None] * np.ones((3, 1, 1, 3)))
  test = _Source(np.zeros((2, 1, 1, 3)))
  # Add-one smoothing: value 0 seen twice -> (2 + 1) / (3 + 256).
  expected = -math.log2(3 / 259)
  assert abs(baselines.independent_pixel_bpd(train, test, Layout(("rgb",))) - expected) < 1e-9


def test_stats_distance_zero_for_identical_and_grows_with_shift():
  rng = np.random.default_rng(0)
  ref = rng.normal(size=(500, 4))
  assert scene_metrics.stats_distance(ref, ref) < 1e-5
  near = scene_metrics.stats_distance(ref + 0.1, ref)
  far = scene_metrics.stats_distance(ref + 1.0, ref)
  assert 0.05 < near < far
