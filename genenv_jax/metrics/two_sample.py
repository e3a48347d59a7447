"""Classifier two-sample test (C2ST): can a simple classifier tell two sets apart?

Lopez-Paz & Oquab (2017): label one set 0 and the other 1, train a
classifier on part of the pooled data and report its accuracy on the rest.
0.5 means the sets are indistinguishable to that classifier, 1.0 perfectly
separable. Unlike FD it needs no feature space matched to the data's domain
and its scale means the same on any data, which is why it is reported
beside the feature-network metrics (and why it is the one to trust on a
user's photographs, where the scene feature network is out of its domain).

Two inputs, one classifier:

* ``features``: the scene feature network's embedding.
* ``pixels``: features-free statistics of the RGB (an 8x8 thumbnail,
  per-channel means, spreads and 16-bin histograms, gradient magnitudes,
  colourfulness and the radial power spectrum): what a speckled, colour-noisy
  or blurred sample gives away without any learned features.

The classifier is L2-regularised logistic regression on standardised inputs
(statistics of the training folds only), fitted by a fixed number of full-
batch Adam steps in JAX with the rows sharded over the mesh's devices;
accuracy is pooled over ``folds``-fold cross-validation with a seeded split.
Everything is deterministic for a given seed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genenv_jax import parallel

FOLDS = 5
STEPS = 300
L2 = 1e-2


def pixel_statistics(rgb: np.ndarray) -> np.ndarray:
  """uint8 RGB [n, h, w, 3] -> float64 [n, d] features-free image statistics (see the module doc)."""
  x = np.asarray(rgb, np.float64) / 255.0
  n, h, w, _ = x.shape
  fy, fx = max(1, h // 8), max(1, w // 8)
  thumb = x[:, : fy * (h // fy), : fx * (w // fx)].reshape(n, h // fy, fy, w // fx, fx, 3).mean((2, 4))
  hist = np.stack([np.stack([np.histogram(im[..., c], 16, (0.0, 1.0))[0] for c in range(3)]) for im in x])
  hist = hist.reshape(n, -1) / (h * w)
  dx, dy = np.abs(np.diff(x, axis=2)), np.abs(np.diff(x, axis=1))
  grads = np.concatenate([dx.mean((1, 2)), dy.mean((1, 2)), dx.std((1, 2)), dy.std((1, 2))], 1)
  rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
  colour = np.stack([rg.std((1, 2)), yb.std((1, 2)), np.abs(rg).mean((1, 2)), np.abs(yb).mean((1, 2))], 1)
  gray = x.mean(-1)
  power = np.abs(np.fft.fft2(gray - gray.mean((1, 2), keepdims=True))) ** 2
  fy_, fx_ = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
  radius = np.sqrt(fy_**2 + fx_**2)
  bins = np.minimum((radius / radius.max() * 8).astype(int), 7)
  spectrum = np.stack([power[:, bins == b].mean(1) for b in range(8)], 1)
  return np.concatenate(
    [
      thumb.reshape(n, -1),
      x.mean((1, 2)),
      x.std((1, 2)),
      hist,
      grads,
      colour,
      np.log(spectrum + 1e-8),
    ],
    1,
  )


@functools.lru_cache(maxsize=8)
def _fit_predict(mesh):
  rows = parallel.batch_sharded(mesh)
  tx = optax.adam(0.05)

  def fit_predict(x, y, w, xq):
    """Fits logistic regression on rows with weight w (0 = padding) and returns logits of xq."""
    d = x.shape[1]
    params = (jnp.zeros((d,), jnp.float32), jnp.zeros((), jnp.float32))

    def loss(p):
      logits = x @ p[0] + p[1]
      nll = optax.sigmoid_binary_cross_entropy(logits, y)
      return (nll * w).sum() / w.sum() + L2 * (p[0] ** 2).sum()

    def step(carry, _):
      p, s = carry
      g = jax.grad(loss)(p)
      u, s = tx.update(g, s, p)
      return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=STEPS)
    return xq @ params[0] + params[1]

  return jax.jit(fit_predict, in_shardings=(rows, rows, rows, rows), out_shardings=rows)


def c2st(a: np.ndarray, b: np.ndarray, mesh=None, folds: int = FOLDS, seed: int = 0) -> float:
  """Held-out accuracy of a classifier telling rows of ``a`` [n, d] from rows of ``b`` [m, d].

  The larger set is subsampled to the smaller one's size (chance is then
  0.5). Returns the accuracy pooled over ``folds`` cross-validation folds.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  n = min(len(a), len(b))
  if n < folds:
    raise ValueError(f"two-sample test: needs at least {folds} rows per set, got {len(a)} and {len(b)}")
  rng = np.random.default_rng(seed)
  a, b = a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]
  x = np.concatenate([a, b])
  y = np.concatenate([np.zeros(n), np.ones(n)])
  fold = rng.permutation(np.arange(2 * n) % folds)
  mesh = mesh or parallel.make_mesh(-1)
  k = mesh.devices.size
  fn = _fit_predict(mesh)
  correct = 0
  for f in range(folds):
    tr, te = fold != f, fold == f
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    xt, xq = ((x[tr] - mu) / sd).astype(np.float32), ((x[te] - mu) / sd).astype(np.float32)
    # Train and query rows padded (weight 0) to the pooled count, so one program serves every fold.
    m = len(x) + (-len(x)) % k
    pad = lambda v: np.concatenate([v, np.zeros((m - len(v), *v.shape[1:]), v.dtype)])  # noqa: E731
    w = np.ones(tr.sum(), np.float32)
    logits = np.asarray(fn(pad(xt), pad(y[tr].astype(np.float32)), pad(w), pad(xq)))[: te.sum()]
    correct += int(((logits > 0) == (y[te] > 0.5)).sum())
  return correct / (2 * n)
