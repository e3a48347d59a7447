"""One process of a multi-process run (launched by test_training.py)."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

from genenv_jax import parallel  # noqa: E402
from genenv_jax.config_utils import load_config  # noqa: E402


def main():
  port, pid, data_dir, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
  parallel.initialize_distributed(f"127.0.0.1:{port}", 2, pid)
  assert jax.device_count() == 8 and jax.local_device_count() == 4
  import helpers

  config = load_config(os.path.join(root, "configs/gan_city.py:smoke"), [f"data.data_dir={data_dir!r}"])
  losses, _ = helpers.run_steps(config, num_devices=8)
  feats = helpers.feature_metrics_of_fixed_sets(parallel.make_mesh(8))
  if pid == 0:
    print("LOSSES " + json.dumps(losses.tolist()))
    print("FEATURES " + json.dumps(feats))
  jax.distributed.shutdown()


if __name__ == "__main__":
  main()
