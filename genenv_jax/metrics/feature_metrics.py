"""Distances between two sets of feature vectors: FD, KID, k-NN precision and recall.

* ``frechet_distance``: the Fréchet distance between Gaussians fitted to the
  two sets (FID's formula), computed in float64 through symmetric
  eigendecompositions, so identical sets give 0 to rounding.
* ``kid``: the unbiased MMD² estimate with the cubic polynomial kernel
  ``k(x, y) = (x·y / d + 1)³`` (Bińkowski et al. 2018; StyleGAN2-ADA's
  implementation), its mean and standard deviation over random subsets.
* ``precision_recall``: improved precision and recall (Kynkäänniemi et al.
  2019): each set's manifold is the union of balls reaching each point's k-th
  nearest neighbour; precision is the fraction of generated points inside the
  real manifold, recall the fraction of real points inside the generated one.
  The distance matrices are computed jitted with the query rows sharded over
  the mesh's devices.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from genenv_jax import parallel


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
  """||mu_a - mu_b||² + tr(S_a + S_b - 2 (S_a^½ S_b S_a^½)^½) of feature sets [n, d]."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  mu_a, mu_b = a.mean(0), b.mean(0)
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  w, v = np.linalg.eigh(s_a)
  root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ s_b @ root_a), 0, None)).sum()
  fd = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * cross
  return float(max(fd, 0.0))


def kid_subsets(
  a: np.ndarray, b: np.ndarray, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> np.ndarray:
  """Unbiased MMD² (cubic polynomial kernel) on ``num_subsets`` random subsets of each set.

  ``subset_size`` is capped at half the smaller set, so subsets differ and
  their spread means something. Returns the per-subset estimates.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  m = min(subset_size, len(a) // 2, len(b) // 2)
  if m < 2:
    raise ValueError(f"KID needs at least 4 scenes per set, got {len(a)} and {len(b)}")
  d = a.shape[1]
  rng = np.random.default_rng(seed)
  out = np.empty(num_subsets)
  for s in range(num_subsets):
    x = a[rng.choice(len(a), m, replace=False)]
    y = b[rng.choice(len(b), m, replace=False)]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    out[s] = within - 2 * kxy.mean()
  return out


def _sq_dists(q, c):
  """Squared Euclidean distances [nq, nc] (float32, clamped at 0)."""
  d = (q * q).sum(-1)[:, None] + (c * c).sum(-1)[None, :] - 2 * q @ c.T
  return jnp.maximum(d, 0.0)


def _kth_neighbour(rows, allf, k):
  neg, _ = jax.lax.top_k(-_sq_dists(rows, allf), k + 1)  # the nearest is the point itself
  return jnp.sqrt(-neg[:, -1])


def _covered(rows, centers, radii):
  return (_sq_dists(rows, centers) <= (radii * radii)[None, :]).any(-1)


@functools.lru_cache(maxsize=None)
def _jitted(fn, mesh, **static):
  """``fn`` jitted once per mesh, its output sharded by rows."""
  return jax.jit(functools.partial(fn, **static), out_shardings=parallel.batch_sharded(mesh))


def _sharded_rows(f, mesh, rows: np.ndarray, *replicated_args):
  """Applies jitted ``f(rows, *args)`` with ``rows`` sharded over ``mesh`` (padded to fit) on every process."""
  n, k = len(rows), mesh.devices.size
  pad = (-n) % k
  if pad:
    rows = np.concatenate([rows, np.repeat(rows[:1], pad, 0)])
  repl = parallel.replicated(mesh)
  args = [parallel.put_global(a, repl) for a in replicated_args]
  return parallel.to_host(f(parallel.put_global(rows, parallel.batch_sharded(mesh)), *args))[:n]


def knn_radii(feats: np.ndarray, k: int, mesh) -> np.ndarray:
  """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
  f32 = np.asarray(feats, np.float32)
  return _sharded_rows(_jitted(_kth_neighbour, mesh, k=k), mesh, f32, f32)


def coverage(queries: np.ndarray, centers: np.ndarray, radii: np.ndarray, mesh) -> np.ndarray:
  """Whether each query lies within ``radii[j]`` of some ``centers[j]``: bool [nq]."""
  q, c = np.asarray(queries, np.float32), np.asarray(centers, np.float32)
  return _sharded_rows(_jitted(_covered, mesh), mesh, q, c, np.asarray(radii, np.float32))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, mesh=None) -> tuple[float, float]:
  """Improved precision and recall of ``fake`` against ``real`` with k-NN balls."""
  mesh = mesh or parallel.make_mesh(-1)
  if min(len(real), len(fake)) <= k:
    raise ValueError(f"precision/recall with k={k} needs more than {k} scenes per set, got {len(real)}, {len(fake)}")
  # Centre on the real mean: the float32 distance expansion then loses less to cancellation.
  centre = np.asarray(real, np.float64).mean(0)
  real, fake = np.asarray(real) - centre, np.asarray(fake) - centre
  precision = coverage(fake, real, knn_radii(real, k, mesh), mesh).mean()
  recall = coverage(real, fake, knn_radii(fake, k, mesh), mesh).mean()
  return float(precision), float(recall)


def compare(reference: np.ndarray, other: np.ndarray, mesh=None, k: int = 3, kid_seed: int = 0) -> dict[str, float]:
  """All feature-space metrics of ``other`` against ``reference`` (the real train-split features)."""
  kids = kid_subsets(reference, other, seed=kid_seed)
  precision, recall = precision_recall(reference, other, k, mesh)
  return {
    "fd": frechet_distance(reference, other),
    "kid": float(kids.mean()),
    "kid_std": float(kids.std()),
    "precision": precision,
    "recall": recall,
  }
