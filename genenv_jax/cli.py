"""What the entry points share: multi-process flags and quieter logs."""

from __future__ import annotations

import logging as std_logging
import os

from absl import flags, logging

from genenv_jax import parallel

_COORD = flags.DEFINE_string("coordinator", "", "HOST:PORT of process 0, or 'auto' on a TPU pod/cluster.")
_NPROC = flags.DEFINE_integer("num_processes", 1, "Processes in a multi-process run.")
_PID = flags.DEFINE_integer("process_id", 0, "This process's index.")
_CACHE = flags.DEFINE_string(
  "compile_cache",
  "~/.cache/genenv_jax/xla",
  "Folder of JAX's persistent compilation cache (reruns skip compiling); 'none' turns it off.",
)


class _QuietOrbax:
  """Drops Orbax's per-save INFO lines (dozens per checkpoint); warnings still show."""

  def filter(self, record):
    msg = str(record.msg)
    if "Using custom data configuration" in msg or "has no dataset_info.json" in msg:
      return False  # TFDS says these for every built-in world before it is generated; that is expected
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname


def start() -> None:
  """Call first in ``main``: quiets library INFO logs and starts the multi-process runtime.

  By default only warnings and errors are logged (the commands print one line
  per phase themselves); ``--verbosity=0`` (or ``-v 0``) brings INFO back.
  """
  logging.get_absl_handler().addFilter(_QuietOrbax())
  if _CACHE.value and _CACHE.value.lower() != "none":
    import jax

    # Executables that took over a second to compile are kept on disk, keyed by the program, the
    # devices and the JAX version; a rerun of the same command loads them instead of compiling.
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(_CACHE.value))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
    std_logging.getLogger("jax").setLevel(std_logging.WARNING)
  parallel.initialize_distributed(_COORD.value, _NPROC.value, _PID.value)
