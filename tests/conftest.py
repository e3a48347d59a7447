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

# Seconds each file took in a full run on the 2-core machine (summed test time, `--junitxml`), largest first.
# Files are handed to the two xdist workers in this order (`--no-loadscope-reorder`, pyproject.toml), so the
# long files start first and the short ones fill the end (largest-first scheduling); xdist's own order is by
# number of tests, which left a long file to start last. A file not listed counts as the longest.
FILE_SECONDS = {
  "test_flow_matching.py": 484, "test_gan.py": 276, "test_folder.py": 272, "test_training.py": 255,
  "test_hier.py": 250, "test_hier3.py": 180, "test_families_loop.py": 247, "test_vae.py": 227, "test_flow.py": 183,
  "test_models.py": 40, "test_synthesis.py": 142, "test_dem.py": 131, "test_workdir.py": 128,
  "test_exports.py": 118, "test_ray.py": 115, "test_evaluation.py": 97, "test_own_space.py": 89,
  "test_cpu_kernels.py": 85, "test_server.py": 77, "test_server_browser.py": 76, "test_feature_net.py": 72,
  "test_new_user.py": 62, "test_regions.py": 58, "test_onnx_export.py": 46, "test_heightfile.py": 37,
  "test_benchmarks.py": 23, "test_doc_commands.py": 12, "test_props.py": 7, "test_interiors.py": 7,
  "test_multiscale.py": 7, "test_metrics.py": 7, "test_levels.py": 6, "test_scenes.py": 3, "test_feature_metrics.py": 2,
  "test_data.py": 2, "test_layers.py": 1, "test_results_table.py": 0,
}  # fmt: skip


def pytest_collection_modifyitems(config, items):
  """Longest files first (see FILE_SECONDS); the order of tests inside a file is kept."""
  items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 10**6))


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
