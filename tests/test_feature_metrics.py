"""FD, KID and precision/recall on feature vectors: hand-computed cases and estimator properties."""

import jax
import numpy as np
import pytest
import scipy.linalg

from genenv_jax import parallel
from genenv_jax.metrics import feature_metrics as fm


def _gauss(n, d=8, seed=0, shift=0.0, scale=1.0):
  return np.random.default_rng(seed).normal(shift, scale, (n, d))


def test_fd_zero_for_identical_sets_and_matches_sqrtm_formula():
  a, b = _gauss(400, seed=0), _gauss(400, seed=1, shift=0.3, scale=1.5)
  assert fm.frechet_distance(a, a) < 1e-9
  # Independent formula: scipy's general matrix square root of S_a S_b.
  mu_a, mu_b = a.mean(0), b.mean(0)
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  root = scipy.linalg.sqrtm(s_a @ s_b).real
  expected = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root)
  assert fm.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_fd_of_a_pure_shift_is_its_squared_length():
  a = _gauss(300)
  delta = np.arange(8) * 0.1
  assert fm.frechet_distance(a, a + delta) == pytest.approx((delta**2).sum(), rel=1e-9)


def test_kid_matches_a_brute_force_sum_on_a_tiny_case():
  a, b = _gauss(6, d=3, seed=2), _gauss(6, d=3, seed=3, shift=1.0)
  est = fm.kid_subsets(a, b, num_subsets=1, subset_size=3, seed=5)[0]
  rng = np.random.default_rng(5)
  x, y = a[rng.choice(6, 3, replace=False)], b[rng.choice(6, 3, replace=False)]

  def k(u, v):
    return (u @ v / 3 + 1) ** 3

  xx = sum(k(x[i], x[j]) for i in range(3) for j in range(3) if i != j) / 6
  yy = sum(k(y[i], y[j]) for i in range(3) for j in range(3) if i != j) / 6
  xy = sum(k(x[i], y[j]) for i in range(3) for j in range(3)) / 9
  assert est == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_is_unbiased_where_the_plain_mmd_is_not():
  # Two sets from one distribution: the unbiased estimate averages to ~0 over
  # many small subsets; the biased (V-statistic) one, with the diagonal kept,
  # stays clearly positive.
  a, b = _gauss(4000, seed=4), _gauss(4000, seed=5)
  kids = fm.kid_subsets(a, b, num_subsets=400, subset_size=20, seed=0)
  stderr = kids.std() / np.sqrt(len(kids))
  assert abs(kids.mean()) < 3 * stderr
  x, y = a[:20], b[:20]
  biased = ((x @ x.T / 8 + 1) ** 3).mean() + ((y @ y.T / 8 + 1) ** 3).mean() - 2 * ((x @ y.T / 8 + 1) ** 3).mean()
  assert biased > 10 * stderr
  # A real difference is detected far outside that noise.
  shifted = fm.kid_subsets(a, _gauss(4000, seed=6, shift=0.3), num_subsets=100, subset_size=200)
  assert shifted.mean() > 10 * shifted.std() / np.sqrt(100)


def test_precision_recall_hand_computed():
  real = np.array([[0.0], [1.0], [2.0], [10.0]])
  fake = np.array([[0.5], [5.0], [6.0], [-20.0]])
  # k=1 radii. Real: 0->1, 1->1, 2->1, 10->8. Fake: 0.5->4.5, 5->1, 6->1, -20->20.5.
  # Precision: 0.5 (near 0), 5 and 6 (within 8 of 10) are inside; -20 is not -> 3/4.
  # Recall: 0, 1, 2 lie within 4.5 of 0.5; 10 is 4 from 6 (radius 1), 5 from 5
  # (radius 1), 9.5 from 0.5 (radius 4.5) and 30 from -20 (radius 20.5) -> 3/4.
  p, r = fm.precision_recall(real, fake, k=1, mesh=parallel.make_mesh(1))
  assert (p, r) == (0.75, 0.75)
  np.testing.assert_allclose(fm.knn_radii(real, 1, parallel.make_mesh(1)), [1, 1, 1, 8])


def test_identical_sets_have_full_precision_and_recall_and_zero_distance():
  a = _gauss(300, d=16)
  m = fm.compare(a, a.copy(), parallel.make_mesh(1))
  assert m["precision"] == 1.0 and m["recall"] == 1.0
  assert m["fd"] < 1e-9
  # A set against itself: subsets share points, so the cross term counts
  # k(x, x) pairs and the unbiased KID sits at or just below zero.
  assert m["kid"] <= 0.0
  assert abs(m["kid"]) < 0.2 * fm.compare(a, a + 0.5, parallel.make_mesh(1))["kid"]


def test_one_and_eight_devices_agree():
  assert jax.device_count() == 8
  a, b = _gauss(203, d=16, seed=7), _gauss(197, d=16, seed=8, shift=0.2)
  one = fm.compare(a, b, parallel.make_mesh(1))
  eight = fm.compare(a, b, parallel.make_mesh(8))
  assert one == pytest.approx(eight, rel=1e-6, abs=1e-9)
  np.testing.assert_allclose(fm.knn_radii(a, 3, parallel.make_mesh(1)), fm.knn_radii(a, 3, parallel.make_mesh(8)))


def test_too_few_scenes_is_a_clear_error():
  with pytest.raises(ValueError, match="at least 4 scenes"):
    fm.kid_subsets(_gauss(3), _gauss(10))
  with pytest.raises(ValueError, match="k=3 needs more than 3"):
    fm.precision_recall(_gauss(3), _gauss(10), k=3, mesh=parallel.make_mesh(1))
