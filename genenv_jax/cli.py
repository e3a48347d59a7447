"""What the entry points share: multi-process flags and quieter logs."""

from __future__ import annotations

import logging as std_logging
import os
import re
import sys

from absl import flags, logging

from genenv_jax import paths

_COORD = flags.DEFINE_string("coordinator", "", "HOST:PORT of process 0, or 'auto' on a TPU pod/cluster.")
_NPROC = flags.DEFINE_integer("num_processes", 1, "Processes in a multi-process run.")
_PID = flags.DEFINE_integer("process_id", 0, "This process's index.")
_CACHE = flags.DEFINE_string(
  "compile_cache",
  paths.compile_cache(),
  "Folder of JAX's persistent compilation cache (reruns skip compiling); 'none' turns it off. "
  f"${paths.HOME_ENV} moves it and the built-in worlds' data together.",
)


class _QuietOrbax:
  """Drops Orbax's per-save INFO lines (dozens per checkpoint); warnings still show."""

  def filter(self, record):
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
  from genenv_jax import parallel  # here: --help stays fast (no JAX import)

  parallel.initialize_distributed(_COORD.value, _NPROC.value, _PID.value)


_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false"}


def parse_flags(argv):
  """``app.run(main, flags_parser=cli.parse_flags)``: a bad flag value is one ``error:`` line, not absl's FATAL."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    text = str(e)
    m = re.match(r"flag --([\w.]+)=(.*?): ", text)
    if m and m[1] in flags.FLAGS:
      f = flags.FLAGS[m[1]]
      kind = _TYPES.get(f.flag_type(), "")
      allowed = getattr(getattr(f, "parser", None), "enum_values", None)
      what = f"one of {list(allowed)}" if allowed else kind
      if what:
        text = f"--{m[1]}={m[2]!r}: must be {what} (see --help)"
    print(f"error: {text}", file=sys.stderr)
    sys.exit(1)
