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


def test_two_sample_test_is_chance_for_one_distribution_and_one_for_two_on_1_and_8_devices():
  from genenv_jax import parallel
  from genenv_jax.metrics import two_sample

  rng = np.random.default_rng(0)
  real_a, real_b = rng.normal(size=(400, 32)), rng.normal(size=(400, 32))
  other = rng.normal(size=(400, 32)) * 1.0 + np.linspace(0, 2.0, 32)  # a shifted mean (Bayes accuracy 0.9995)
  # Pixels: smooth noise images vs the same with speckle on top.
  smooth = np.repeat(np.repeat(rng.integers(60, 200, (300, 8, 8, 3)), 4, 1), 4, 2).astype(np.uint8)
  smooth2 = np.repeat(np.repeat(rng.integers(60, 200, (300, 8, 8, 3)), 4, 1), 4, 2).astype(np.uint8)
  speckled = np.clip(smooth2 + rng.normal(0, 30, smooth2.shape), 0, 255).astype(np.uint8)
  got = {}
  for k in (1, 8):
    mesh = parallel.make_mesh(k)
    got[k] = (
      two_sample.c2st(real_a, real_b, mesh),
      two_sample.c2st(real_a, other, mesh),
      two_sample.c2st(two_sample.pixel_statistics(smooth), two_sample.pixel_statistics(smooth2), mesh),
      two_sample.c2st(two_sample.pixel_statistics(smooth), two_sample.pixel_statistics(speckled), mesh),
    )
  same, shifted, px_same, px_speckle = got[1]
  assert abs(same - 0.5) < 0.06 and abs(px_same - 0.5) < 0.08
  assert shifted > 0.95 and px_speckle > 0.98
  np.testing.assert_allclose(got[1], got[8], atol=2.5e-3)  # at most one of 800 rows flips with the reduction order
