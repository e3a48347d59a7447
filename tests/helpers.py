"""Small helpers shared by tests (imported, not fixtures)."""

import jax
import numpy as np

from genenv_jax import parallel, training


def run_steps(config, num_devices: int, steps: int = 3):
  """Runs ``steps`` train steps on a mesh of ``num_devices``; returns (losses, params)."""
  su = training.Setup(config, mesh=parallel.make_mesh(num_devices))
  state = su.init_state()
  losses = []
  for s, batch in su.loader.iterate(0, steps):
    state, m = su.step_fn(state, batch)
    m = jax.device_get(m)
    losses.append([float(m[k]) for k in sorted(m) if "loss" in k])
  return np.array(losses), jax.device_get(state.params)
