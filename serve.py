r"""Serves a world or a trained model over HTTP: the explorer page at /, and the API games call.

  python serve.py --world=city_regions
  python serve.py --workdir=runs/fm_city_cpu --port=8000
  python serve.py --model=fm_dungeon

Open http://127.0.0.1:8000/ to pan, zoom, paint and regenerate; the API
(``/api/info``, ``/api/region``, ``/tiles/...``, ``/api/edit``,
``/api/sample``, ``/api/export``) is described in docs/server.md. Edits are
kept in an append-only log (``--edits``, default ``WORKDIR/edits`` or
``$GENENV_HOME/server/NAME``), so the edited world survives a restart.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from genenv_jax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir to serve.")
_MODEL = flags.DEFINE_string("model", None, "A shipped pretrained model (python -m genenv_jax.models).")
_WORLD = flags.DEFINE_string("world", None, "A built-in world to serve (real scenes).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (127.0.0.1: this machine only).")
_PORT = flags.DEFINE_integer("port", 8000, "Port to listen on.")
_EDITS = flags.DEFINE_string("edits", None, "Folder of the edit log (default: beside the source).")
_QUEUE = flags.DEFINE_integer("max_queue", 64, "Requests waiting to be drawn before the server answers 503.")
_KERNELS = flags.DEFINE_string(
  "cpu_convolutions",
  "auto",
  "A model's canvas ODE kernels on a CPU: 'eigen' (every core), 'xla' (XLA's default, one core a convolution), "
  "'auto' (eigen on a CPU). Accelerators ignore it.",
)


def edits_folder() -> str:
  if _EDITS.value:
    return _EDITS.value
  if _WORKDIR.value:
    return os.path.join(_WORKDIR.value, "edits")
  from genenv_jax import paths

  home = os.environ.get(paths.HOME_ENV, "").strip() or os.path.expanduser("~/.cache/genenv_jax")
  return os.path.join(home, "server", _WORLD.value or _MODEL.value or "source")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not 1 <= _PORT.value <= 65535:
    print(f"error: port={_PORT.value}: must be in 1..65535", file=sys.stderr)
    return 1
  if _QUEUE.value < 1:
    print(f"error: max_queue={_QUEUE.value}: must be at least 1", file=sys.stderr)
    return 1
  from genenv_jax import cpu_kernels

  try:
    cpu_kernels.validate(_KERNELS.value, "cpu_convolutions", auto=True)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  cli.start()
  import uvicorn

  from genenv_jax import logs
  from genenv_jax.server import app as server_app
  from genenv_jax.server import sources

  try:
    source = sources.open_source(
      _WORLD.value or "", _WORKDIR.value or "", _MODEL.value or "", _STEP.value, _KERNELS.value
    )
    folder = edits_folder()
    application = server_app.make_app(source, folder, _QUEUE.value)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  logs.phase(f"serving {source.name} on http://{_HOST.value}:{_PORT.value}/ (edits in {folder})")
  uvicorn.run(application, host=_HOST.value, port=_PORT.value, log_level="warning")
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
