"""Synthesis on Ray: byte-identical to the local path, a killed worker's shard redone, resume, clear errors."""

import os
import signal
import subprocess
import sys

import pytest

from tests import helpers

ray = pytest.importorskip("ray", reason="Ray is optional (requirements-ray.txt); CI installs it")
pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _files(folder):
  out = {}
  for d, _, fs in os.walk(folder):
    for f in fs:
      if ("array_record" in f or f.endswith((".json", ".png"))) and "dataset_info" not in f:
        p = os.path.join(d, f)
        out[os.path.relpath(p, folder)] = open(p, "rb").read()
  return out


def test_ray_output_is_byte_identical_and_survives_a_killed_worker(smoke_workdir, tmp_path):
  from genenv_jax import synthesis, trained
  from genenv_jax.synthesis import ray_engine

  model = trained.load(smoke_workdir)
  kw = dict(num_samples=96, seed=4, batch_size=16, shard_size=16, chunk=2, cpu_convolutions="xla")
  synthesis.run(model, str(tmp_path / "local"), progress=False, **kw)
  killed = []

  def kill_one(j, actors):
    if not killed:  # after the first shard: kill a worker process (SIGKILL, as a preempted node)
      pid = ray.get(actors[0].pid.remote())
      os.kill(pid, signal.SIGKILL)
      killed.append(pid)

  source = {"workdir": smoke_workdir, "step": model.step}
  rec = ray_engine.run(model, source, str(tmp_path / "ray"), workers=2, on_shard=kill_one, **kw)
  assert killed and rec["ray_stats"]["worker_restarts"] >= 1
  assert helpers._checksums(tmp_path / "ray") == helpers._checksums(tmp_path / "local")
  local, remote = _files(tmp_path / "local"), _files(tmp_path / "ray")
  assert local.keys() == remote.keys() and all(local[k] == remote[k] for k in local)
  # A rerun finds every shard and does nothing; a lost shard is redone alone, to the same bytes.
  shard = sorted(k for k in remote if "array_record" in k and not k.endswith(".json"))[2]
  os.remove(tmp_path / "ray" / shard)
  ray_engine.run(model, source, str(tmp_path / "ray"), workers=1, **kw)
  assert open(tmp_path / "ray" / shard, "rb").read() == local[shard]


def test_ray_errors_are_one_line(smoke_workdir, tmp_path):
  r = subprocess.run(
    [sys.executable, os.path.join(ROOT, "sample.py"), f"--workdir={smoke_workdir}", f"--output={tmp_path / 'o'}",
     "--num_samples=8", "--engine=ray", "--ray_address=127.0.0.1:1"],
    capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert r.returncode == 1 and "--ray_address='127.0.0.1:1': no Ray cluster answers there" in r.stderr, r.stderr[-800:]
  r = subprocess.run(
    [sys.executable, "-c", "import sys; sys.modules['ray'] = None; from genenv_jax.synthesis import ray_engine; "
     "ray_engine._import_ray()"],
    capture_output=True, text=True, timeout=120, cwd=ROOT,
  )  # fmt: skip
  assert "--engine=ray needs Ray, which is optional" in r.stderr
