"""A workdir belongs to one run; its logs hold every step once; damaged files are survived."""

import errno
import json
import os
import shutil

import jax
import numpy as np
import pytest

from genenv_jax import checkpoint, logs, training
from genenv_jax import workdir as workdir_lib
from genenv_jax.config_utils import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(data_dir, spec="configs/gan_city.py:smoke", *overrides):
  base = [f"data.data_dir={data_dir!r}", "mesh.num_devices=1", "train.feature_net='none'"]
  return load_config(os.path.join(ROOT, spec), [*base, *overrides])


@pytest.fixture(scope="module")
def run6(tmp_path_factory, data_dir):
  """A 6-step city GAN run (checkpoints at 3 and 6), copied by each test that changes it."""
  w = str(tmp_path_factory.mktemp("run6"))
  training.run(_cfg(data_dir, "configs/gan_city.py:smoke", "train.eval_every=3"), w)
  return w


def _copy(src, tmp_path):
  dst = str(tmp_path / "w")
  shutil.copytree(src, dst)
  return dst


def _rows(w):
  with open(os.path.join(w, "metrics.jsonl")) as f:
    return [json.loads(ln) for ln in f]


def test_another_config_is_refused_and_nothing_is_touched(run6, data_dir, tmp_path):
  w = _copy(run6, tmp_path)
  before = {p: os.path.getmtime(os.path.join(w, p)) for p in ("run.json", "metrics.jsonl")}
  steps = sorted(os.listdir(os.path.join(w, "checkpoints")))
  for spec, extra, what in [
    ("configs/vae_terrain.py:smoke", (), "family 'gan' on 'city'"),
    ("configs/gan_forest.py:smoke", (), "family 'gan' on 'forest'"),
    ("configs/gan_city.py:smoke", ("train.batch_size=16",), "train.batch_size: 8 here vs 16 requested"),
  ]:
    with pytest.raises(ValueError, match="holds another run") as e:
      training.run(_cfg(data_dir, spec, *extra), w)
    assert what in str(e.value) and "--overwrite" in str(e.value)
  assert sorted(os.listdir(os.path.join(w, "checkpoints"))) == steps
  assert {p: os.path.getmtime(os.path.join(w, p)) for p in before} == before
  # Safe changes resume: more steps, another logging cadence.
  cfg = _cfg(data_dir, "configs/gan_city.py:smoke", "train.eval_every=3", "train.num_steps=7", "train.log_every=1")
  assert int(training.run(cfg, w).step) == 7
  # --overwrite starts the other run from nothing.
  state = training.run(
    _cfg(data_dir, "configs/gan_forest.py:smoke", "train.num_steps=1", "train.feature_net='none'"), w, overwrite=True
  )
  assert int(state.step) == 1 and workdir_lib.Workdir(w).read_run().config.data.world == "forest"


def test_a_second_training_of_the_same_workdir_is_refused(run6, data_dir, tmp_path):
  w = _copy(run6, tmp_path)
  with workdir_lib.Workdir(w).lock():
    with pytest.raises(ValueError, match="another training is running in it"):
      training.run(_cfg(data_dir, "configs/gan_city.py:smoke", "train.eval_every=3"), w)


def test_workdir_paths_are_checked_and_expanded(tmp_path, monkeypatch):
  f = tmp_path / "file"
  f.write_text("x")
  with pytest.raises(ValueError, match="is a file, not a folder"):
    workdir_lib.Workdir(str(f))
  monkeypatch.setenv("HOME", str(tmp_path))
  assert workdir_lib.Workdir("~/x").path == str(tmp_path / "x")


def test_torn_metrics_line_is_dropped_with_a_warning(tmp_path, caplog):
  wd = workdir_lib.Workdir(str(tmp_path))
  with open(wd.metrics, "w") as f:
    f.write('{"step": 2, "loss": 1.0}\n{"step": 3, "eval/fd": 2.0}\n{"step": 4, "lo')
  w = logs.MetricWriter(wd, resume_step=4)
  w.close()
  assert "metrics.jsonl: dropped 1 damaged line" in caplog.text
  assert [r["step"] for r in _rows(str(tmp_path))] == [2, 3] and w.has_eval(3) and not w.has_eval(2)


def test_full_disk_while_logging_is_one_clear_error_and_the_run_resumes(run6, data_dir, tmp_path, monkeypatch):
  w = _copy(run6, tmp_path)
  cfg = _cfg(data_dir, "configs/gan_city.py:smoke", "train.eval_every=3", "train.num_steps=8", "train.log_every=1")
  real_write = logs.MetricWriter.write

  def full(self, step, m):
    if step == 7:
      with open(self.path, "a") as f:
        f.write('{"step": 7, "d_lo')  # half a line, as a full disk leaves it
      raise OSError(errno.ENOSPC, "No space left on device")
    real_write(self, step, m)

  monkeypatch.setattr(logs.MetricWriter, "write", full)
  with pytest.raises(OSError, match="No space left"):
    training.run(cfg, w)
  monkeypatch.setattr(logs.MetricWriter, "write", real_write)
  assert int(training.run(cfg, w).step) == 8
  steps = [r["step"] for r in _rows(w) if "eval/validity" not in r]
  assert steps == sorted(set(steps)) and 7 in steps and 8 in steps


def test_evaluation_lost_after_its_checkpoint_is_redone_once(run6, data_dir, tmp_path):
  w = _copy(run6, tmp_path)
  cfg = _cfg(data_dir, "configs/gan_city.py:smoke", "train.eval_every=3")
  full = [r for r in _rows(w) if "eval/validity" in r]
  assert [r["step"] for r in full] == [0, 3, 6]
  # A kill between step 6's checkpoint and its evaluation: no row, no grid.
  kept = [r for r in _rows(w) if not (r["step"] == 6 and "eval/validity" in r)]
  with open(os.path.join(w, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)
  os.remove(os.path.join(w, "samples", "step_0000006.png"))
  training.run(cfg, w)
  again = [r for r in _rows(w) if "eval/validity" in r]
  assert [r["step"] for r in again] == [0, 3, 6]
  assert again[2] == pytest.approx(full[2])  # the same evaluation, not a different one
  assert os.path.exists(os.path.join(w, "samples", "step_0000006.png"))


def test_step_zero_evaluation_is_written_once_after_early_kills(data_dir, tmp_path):
  cfg = _cfg(data_dir, "configs/gan_city.py:smoke", "train.num_steps=2", "train.eval_every=2")
  w = str(tmp_path / "w")
  training.run(cfg, w, stop_at=0)  # evaluates step 0, then stops before any checkpoint
  shutil.rmtree(os.path.join(w, "checkpoints"), ignore_errors=True)
  training.run(cfg, w, stop_at=0)
  training.run(cfg, w)
  assert [r["step"] for r in _rows(w) if "eval/validity" in r] == [0, 2]


def test_signal_logs_the_step_it_stops_at(data_dir, tmp_path, monkeypatch):
  class StopAfterThree:
    calls = 0

    def __init__(self):
      self.requested = None

    @property
    def requested(self):
      StopAfterThree.calls += 1
      # Read twice on step 1, once on step 2 (the log test short-circuits), first on step 3.
      return "SIGTERM" if StopAfterThree.calls >= 4 else None

    @requested.setter
    def requested(self, v):
      pass

    def restore(self):
      pass

  monkeypatch.setattr(training, "_StopSignal", StopAfterThree)
  cfg = _cfg(data_dir, "configs/gan_city.py:smoke", "train.log_every=2", "train.eval_every=100")
  w = str(tmp_path / "w")
  state = training.run(cfg, w)
  done = int(state.step)
  assert done % 2 == 1  # an odd step, which log_every=2 would never log
  assert done in [r["step"] for r in _rows(w)]
  assert done in checkpoint.Checkpointer(os.path.join(w, "checkpoints"), 3, 3).all_steps()


def test_divergence_count_starts_again_on_resume(run6, data_dir, tmp_path, monkeypatch):
  """A checkpoint that carries many skipped steps from before does not stop a healthy resumed run."""
  w = _copy(run6, tmp_path)
  real = checkpoint.Checkpointer.restore_latest

  def with_old_skips(self, abstract, *a, **k):
    state, step = real(self, abstract, *a, **k)
    return state._replace(skipped=state.skipped + 100), step

  monkeypatch.setattr(checkpoint.Checkpointer, "restore_latest", with_old_skips)
  cfg = _cfg(data_dir, "configs/gan_city.py:smoke", "train.eval_every=3", "train.num_steps=8")
  assert int(training.run(cfg, w).step) == 8


def test_corrupted_checkpoint_bytes_fall_back_to_the_previous_step(run6, data_dir, tmp_path, caplog):
  w = _copy(run6, tmp_path)
  step6 = os.path.join(w, "checkpoints", "6")
  assert os.path.exists(os.path.join(step6, checkpoint.DIGEST_FILE))
  files = [os.path.join(r, f) for r, _, fs in os.walk(step6) for f in fs if f != checkpoint.DIGEST_FILE]
  target = max(files, key=os.path.getsize)
  with open(target, "r+b") as f:
    f.seek(os.path.getsize(target) // 2)
    chunk = f.read(64)
    f.seek(-len(chunk), 1)
    f.write(bytes(b ^ 0xFF for b in chunk))
  su = training.Setup(_cfg(data_dir, "configs/gan_city.py:smoke", "train.eval_every=3"))
  ck = checkpoint.Checkpointer(os.path.join(w, "checkpoints"), 3, 3)
  state, step = ck.restore_latest(su.abstract_state())
  ck.close()
  assert step == 3 and "differ from their saved sha256" in caplog.text
  assert os.path.isdir(step6 + ".unreadable")
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(jax.device_get(state.params)))
