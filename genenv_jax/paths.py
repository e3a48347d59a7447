"""Where the library writes outside a run's workdir, and the one variable that moves it all.

* Built-in worlds' TFDS datasets (``data.data_dir``): ``~/tensorflow_datasets``.
* JAX's persistent compilation cache (``--compile_cache``): ``~/.cache/genenv_jax/xla``.

With ``GENENV_HOME=DIR`` set, both go under DIR (``DIR/tensorflow_datasets``,
``DIR/xla``); ``--config.data.data_dir`` and ``--compile_cache`` still
override each one. Nothing else is written outside the workdir or output.
"""

from __future__ import annotations

import os

HOME_ENV = "GENENV_HOME"


def _home() -> str | None:
  home = os.environ.get(HOME_ENV, "").strip()
  return home or None


def data_dir() -> str:
  """The default ``data.data_dir``: where built-in worlds are generated once and read from."""
  home = _home()
  return os.path.join(home, "tensorflow_datasets") if home else "~/tensorflow_datasets"


def compile_cache() -> str:
  """The default ``--compile_cache``: compiled programs kept across runs."""
  home = _home()
  return os.path.join(home, "xla") if home else "~/.cache/genenv_jax/xla"
