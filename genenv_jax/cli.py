"""What the entry points share: multi-process flags and quieter logs."""

from __future__ import annotations

import logging as std_logging

from absl import flags, logging

from genenv_jax import parallel

_COORD = flags.DEFINE_string("coordinator", "", "HOST:PORT of process 0, or 'auto' on a TPU pod/cluster.")
_NPROC = flags.DEFINE_integer("num_processes", 1, "Processes in a multi-process run.")
_PID = flags.DEFINE_integer("process_id", 0, "This process's index.")


class _QuietOrbax:
  """Drops Orbax's per-save INFO lines (dozens per checkpoint); warnings still show."""

  def filter(self, record):
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname


def start() -> None:
  """Call first in ``main``: quiets Orbax's logs and starts the multi-process runtime."""
  logging.get_absl_handler().addFilter(_QuietOrbax())
  parallel.initialize_distributed(_COORD.value, _NPROC.value, _PID.value)
