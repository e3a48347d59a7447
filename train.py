r"""Trains a generative scene model.

  python train.py --config=configs/gan_city.py --workdir=runs/city
  python train.py --config=configs/gan_city.py:smoke --workdir=/tmp/w --config.train.num_steps=10

Multi-process (a GPU cluster, or several CPU processes on one machine):
  python train.py ... --coordinator=HOST:PORT --num_processes=N --process_id=I
On a TPU pod, ``--coordinator=auto`` lets JAX read the pod's environment.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from genenv_jax import cli, config_utils

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/gan_city.py:cpu", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, samples).", required=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Delete a different run already in --workdir, then train.")


def main(argv):
  del argv
  cli.start()
  from genenv_jax import training  # here: --help stays fast (no JAX import)

  try:
    training.run(_CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value)
  except (ValueError, OSError, training.TrainingDiverged) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  problem = config_utils.check_override_flags(sys.argv[1:])
  if problem:
    print(f"error: {problem}", file=sys.stderr)
    sys.exit(1)
  app.run(main, flags_parser=cli.parse_flags)
