"""Shared fixtures. 8 fake CPU devices, set before JAX is imported anywhere."""

import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

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
