"""Shared fixtures. 8 fake CPU devices, set before JAX is imported anywhere."""

import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache per test session: tests that train the same smoke config more than
# once (resume equality, CLI runs) compile each program once. Fresh per session, so nothing stale is read.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  import atexit
  import shutil
  import tempfile

  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="genenv_xla_cache_")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

# Evaluations of folders pass through the own-space encoder (metrics/own_space.py); a few steps suffice to test
# the path, and tests of the encoder itself give their steps explicitly.
os.environ.setdefault("GENENV_OWN_SPACE_STEPS", "20")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402

from genenv_jax.config_utils import load_config  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """One TFDS data dir for the whole session (worlds are generated once)."""
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def smoke_config(data_dir):
  """The city GAN smoke config on the session's data dir; tests may edit it."""

  def make(*overrides):
    return load_config(os.path.join(ROOT, "configs/gan_city.py:smoke"), [f"data.data_dir={data_dir!r}", *overrides])

  return make


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory, data_dir):
  """A city GAN trained for the smoke config's 6 steps (shared by synthesis and evaluation tests)."""
  from genenv_jax import training

  w = str(tmp_path_factory.mktemp("trained"))
  training.run(load_config(os.path.join(ROOT, "configs/gan_city.py:smoke"), [f"data.data_dir={data_dir!r}"]), w)
  return w
