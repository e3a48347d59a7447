"""Small helpers shared by tests (imported, not fixtures)."""

import jax
import numpy as np

from genenv_jax import parallel, training


def run_steps(config, num_devices: int, steps: int = 3):
  """Runs ``steps`` train steps on a mesh of ``num_devices``.

  Returns:
    ([steps, k] the metrics the family declares comparable across device counts, params).
  """
  su = training.Setup(config, mesh=parallel.make_mesh(num_devices))
  keys = su.family.roles.compare
  assert keys, f"family {config.family!r} declares no metrics to compare"
  state = su.init_state()
  values = []
  for s, batch in su.loader.iterate(0, steps):
    state, m = su.step_fn(state, batch)
    m = jax.device_get(m)
    values.append([float(m[k]) for k in keys])
  return np.array(values), jax.device_get(state.params)


def feature_metrics_of_fixed_sets(mesh) -> dict:
  """FD/KID/precision/recall of two fixed random image sets, computed over ``mesh`` (any process count)."""
  from genenv_jax.metrics import feature_metrics, features

  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (37, 16, 16, 3), dtype=np.uint8)
  b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
  net = features.FeatureNet(mesh=mesh, chunk=4)
  return feature_metrics.compare(net.features(a), net.features(b), mesh)
