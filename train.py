r"""Trains a generative scene model.

  python train.py --config=configs/gan_city.py --workdir=runs/city
  python train.py --config=configs/gan_city.py:smoke --workdir=/tmp/w --config.train.num_steps=10

Multi-process (a GPU cluster, or several CPU processes on one machine):
  python train.py ... --coordinator=HOST:PORT --num_processes=N --process_id=I
On a TPU pod, ``--coordinator=auto`` lets JAX read the pod's environment.
"""

import logging as std_logging
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from genenv_jax import config_utils, parallel, training

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/gan_city.py:cpu", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, samples).", required=True)
_COORD = flags.DEFINE_string("coordinator", "", "HOST:PORT of process 0, or 'auto' on a TPU pod/cluster.")
_NPROC = flags.DEFINE_integer("num_processes", 1, "Processes in a multi-process run.")
_PID = flags.DEFINE_integer("process_id", 0, "This process's index.")


class _QuietOrbax:
  """Drops Orbax's per-save INFO lines (dozens per checkpoint); warnings still show."""

  def filter(self, record):
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname


def main(argv):
  del argv
  logging.get_absl_handler().addFilter(_QuietOrbax())
  parallel.initialize_distributed(_COORD.value, _NPROC.value, _PID.value)
  try:
    training.run(_CONFIG.value, _WORKDIR.value)
  except (ValueError, FileNotFoundError, training.TrainingDiverged) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  problem = config_utils.check_override_flags(sys.argv[1:])
  if problem:
    print(f"error: {problem}", file=sys.stderr)
    sys.exit(1)
  app.run(main)
