"""What a new user met: fast --help, one-line errors for bad flags, no silent waits, honest headers, clear refusals."""

import logging
import os
import shutil
import subprocess
import sys

import pytest

from genenv_jax import logs, paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=120):
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("script", ["train.py", "eval.py", "sample.py", "serve.py", "tools/export_onnx.py"])
def test_help_imports_no_jax(script):
  """`sample.py --help` took 11 s: the entry points imported JAX before parsing flags."""
  code = (
    "import runpy, sys\n"
    f"sys.argv = [{script!r}, '--help']\n"
    "try:\n"
    f"  runpy.run_path({script!r}, run_name='__main__')\n"
    "except SystemExit:\n"
    "  pass\n"
    "print('JAX IMPORTED' if 'jax' in sys.modules else 'NO JAX', file=sys.stderr)\n"
  )
  r = _run("-c", code)
  assert "--workdir" in r.stdout + r.stderr and "NO JAX" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize(
  "args,message",
  [
    (("train.py", "--config=configs/gan_city.py:smoke", "--workdir=/tmp/x", "--config.train.batch_size=abc"),
     "error: --config.train.batch_size='abc': must be an integer (the config's value is 8)"),
    (("train.py", "--config=configs/gan_city.py:smoke", "--workdir=/tmp/x", "--config.gan.augment=maybe"),
     "error: --config.gan.augment='maybe': must be True or False"),
    (("sample.py", "--workdir=/tmp/x", "--output=/tmp/y", "--batch_size=abc"),
     "error: --batch_size='abc': must be an integer"),
    (("eval.py", "--workdir=/tmp/x", "--render=paint"),
     "error: --render='paint': must be one of ['model', 'world', 'finished']"),
  ],
)  # fmt: skip
def test_bad_flag_values_are_one_error_line(args, message):
  """`--config.train.batch_size=abc` ended in absl's 'FATAL Flags parsing error'."""
  r = _run(*args)
  assert r.returncode == 1 and message in r.stderr and "FATAL" not in r.stderr, r.stderr


def test_waiting_prints_its_line_at_once_and_a_heartbeat_while_it_lasts(monkeypatch, capsys):
  import time

  monkeypatch.setattr(logs, "HEARTBEAT_S", 0.02)
  with logs.waiting("compiling something"):
    first = capsys.readouterr().err
    rest, deadline = "", time.time() + 30  # polled: a loaded machine may be slow to schedule the heartbeat
    while "still compiling something" not in rest and time.time() < deadline:
      time.sleep(0.01)
      rest += capsys.readouterr().err
  assert first.strip() == "[genenv] compiling something"  # before the work, not after it
  assert "[genenv] still compiling something (0 s)" in rest
  capsys.readouterr()
  time.sleep(0.1)
  assert capsys.readouterr().err == ""  # the heartbeat stops with the phase (its thread is joined)


def test_large_scene_eval_announces_each_phase_and_shows_progress(smoke_workdir, monkeypatch, capsys):
  """`eval.py --scene_size=256x256` printed nothing for 230 s."""
  from genenv_jax import large_eval, parallel, tiling

  monkeypatch.setattr(logs, "HEARTBEAT_S", 0.01)
  calls = []
  real_render = tiling.render_region

  def render(*a, **k):  # what had been printed when the first (compiling) render started
    calls.append(capsys.readouterr().err)
    return real_render(*a, **k)

  monkeypatch.setattr(tiling, "render_region", render)
  large_eval.evaluate(smoke_workdir, 32, 32, 2, "none", mesh=parallel.make_mesh(1))
  before_first = calls[0]
  assert before_first.startswith("[genenv] scoring 2 scenes of 32x32 from step 6")
  assert "[genenv] rendering 2 model scenes of 32x32 (the first one compiles)" in before_first
  assert "still drawing the reference" in before_first or "drawing the reference" in before_first
  rest = "".join(calls[1:]) + capsys.readouterr().err
  assert "model scenes: 100%" in rest and "untrained scenes: 100%" in rest  # progress bars, scene by scene
  assert "[genenv] scoring the model scenes" in rest


def test_training_announces_compiling_before_it_starts(smoke_config, tmp_path, monkeypatch, capsys):
  """A first smoke run sat silent 50-70 s after 'data: ...', then 40-100 s at 'train: 0%' while compiling."""
  from genenv_jax import training

  training.run(smoke_config("train.num_steps=1", "train.feature_net='none'"), str(tmp_path / "w"))
  err = capsys.readouterr().err
  order = [
    "[genenv] initialising the parameters (compiling the model)",
    "[genenv] scoring 16 real held-out scenes",
    "[genenv] evaluating step 0",
    "[genenv] compiling the train step",
  ]
  at = [err.find(line) for line in order]
  assert all(i >= 0 for i in at) and at == sorted(at), err


def test_eval_header_says_how_many_real_scenes_there_are():
  """eval.py said '1000 scenes per set' while the real held-out set had 64."""
  from genenv_jax import evaluation  # eval.py prints evaluation.header (importing eval.py would define its flags)

  r = {"num_samples": 1000, "num_real": 64, "num_reference": 256, "checkpoint_step": 6, "num_devices": 1}
  line = evaluation.header(r)
  assert "1000 generated scenes (model, untrained), 64 real held-out (all the held-out split has" in line
  assert "256 reference (all the training split has)" in line
  assert "1000 scenes per set" not in line


def test_out_of_domain_note_names_the_image_size_when_that_is_the_cause():
  from genenv_jax import evaluation

  small = evaluation.feature_net_domain(0.02, 16, 32, "city")
  assert not small["in_domain"]
  assert "the likely cause is the image size, not the city world: the network reads 32 px" in small["note"]
  assert "image size" not in evaluation.feature_net_domain(0.02, 32, 32, "")["note"]


def test_an_unreadable_asked_step_names_the_readable_fallback(smoke_workdir, tmp_path):
  from genenv_jax import trained

  w = str(tmp_path / "w")
  shutil.copytree(smoke_workdir, w)
  step6 = os.path.join(w, "checkpoints", "6")
  victim = max(
    (os.path.join(d, f) for d, _, fs in os.walk(step6) for f in fs if "digest" not in f), key=os.path.getsize
  )
  with open(victim, "r+b") as f:
    f.seek(os.path.getsize(victim) // 2)
    f.write(b"\0garbage\0")
  with pytest.raises(FileNotFoundError, match=r"checkpoint step 6 is unreadable .*; step 3 is readable \(--step=3"):
    trained.load(w, 6)
  assert trained.load(w, 3).step == 3


def test_large_scenes_are_refused_when_the_disk_cannot_hold_them(smoke_workdir, tmp_path, monkeypatch):
  """`--scene_size=100000x100000 --force` started a 6-hour, 70 GB (now 80: 16-bit heights) job without checking
  free space."""
  from genenv_jax import tiling, trained

  model = trained.load(smoke_workdir)
  usage = shutil.disk_usage(tmp_path)
  monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=10**9))
  # 3 bytes RGB + 3 labels (palette colours) + 2 for the 16-bit heights per pixel: 80 GB.
  with pytest.raises(ValueError, match=r"scene_size=100000x100000: needs up to 80\.0 GB .* has 1\.0 GB free"):
    tiling.write_large_scene(model, str(tmp_path / "big"), 100000, 100000, force=True)
  assert not any(p.name.startswith("scene_") for p in (tmp_path / "big").iterdir())


def test_genenv_home_moves_the_data_and_the_compile_cache(monkeypatch, tmp_path):
  from genenv_jax import config_utils

  monkeypatch.delenv(paths.HOME_ENV, raising=False)
  assert paths.data_dir() == "~/tensorflow_datasets" and paths.compile_cache() == "~/.cache/genenv_jax/xla"
  monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
  assert paths.data_dir() == str(tmp_path / "tensorflow_datasets") and paths.compile_cache() == str(tmp_path / "xla")
  assert config_utils.load_config(os.path.join(ROOT, "configs/gan_city.py:smoke")).data.data_dir == paths.data_dir()


def test_tfds_notes_about_our_own_builders_are_dropped_for_every_caller(tmp_path, caplog):
  """TFDS's 'has no dataset_info.json' warning was filtered in train.py only; tools still showed it."""
  from genenv_jax.data import world_builder

  world_builder.builder("city", 16, 8, 8, str(tmp_path))
  log = logging.getLogger("absl")
  with caplog.at_level(logging.WARNING, logger="absl"):
    log.warning("Dataset dir %s has no dataset_info.json", "x")
    log.warning("something else")
  assert [r.getMessage() for r in caplog.records] == ["something else"]


def test_sample_py_refuses_an_export_bigger_than_the_free_space(tmp_path):
  """The export spool is checked too (a real check against this disk: a 10^6-px-wide scene cannot fit)."""
  r = _run("sample.py", "--world=terrain", f"--output={tmp_path / 'o'}", "--scene_size=1000001x1000001",
           "--export=godot")  # fmt: skip
  assert r.returncode == 1 and "needs up to" in r.stderr and "GB free" in r.stderr, r.stderr
