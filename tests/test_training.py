"""The generic loop: device-count invariance, multi-process, resume, broken checkpoints, CLI."""

import glob
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys

import helpers
import jax
import numpy as np
import pytest

from genenv_jax import checkpoint, parallel, training
from genenv_jax.config_utils import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_one_and_eight_devices_give_the_same_losses(smoke_config):
  cfg = smoke_config()
  l1, p1 = helpers.run_steps(cfg, num_devices=1)
  l8, p8 = helpers.run_steps(cfg, num_devices=8)
  assert l1.shape == (3, 5)  # d_loss, g_loss, r1, d_real, d_fake
  np.testing.assert_allclose(l1, l8, rtol=1e-4, atol=1e-5)
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_two_processes_give_the_same_losses_and_feature_metrics(smoke_config, data_dir):
  cfg = smoke_config()
  l1, _ = helpers.run_steps(cfg, num_devices=1)  # also prepares the dataset once
  port = _free_port()
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  env["PYTHONPATH"] = ROOT  # the worker imports genenv_jax from this checkout
  worker = os.path.join(ROOT, "tests", "mp_worker.py")
  procs = [
    subprocess.Popen(
      [sys.executable, worker, str(port), str(i), data_dir, ROOT],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      cwd=os.path.join(ROOT, "tests"),
    )
    for i in range(2)
  ]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  line = [ln for ln in outs[0][0].splitlines() if ln.startswith("LOSSES ")][0]
  l2 = np.array(json.loads(line[len("LOSSES ") :]))
  np.testing.assert_allclose(l1, l2, rtol=1e-4, atol=1e-5)
  # Feature extraction and k-NN over a mesh spanning both processes match one process.
  line = [ln for ln in outs[0][0].splitlines() if ln.startswith("FEATURES ")][0]
  two = json.loads(line[len("FEATURES ") :])
  assert two == pytest.approx(helpers.feature_metrics_of_fixed_sets(parallel.make_mesh(8)), rel=1e-4, abs=1e-6)


def _params(state):
  return jax.device_get(state.params), jax.device_get(state.ema_params)


def test_resume_equals_uninterrupted(smoke_config, tmp_path):
  cfg = smoke_config(
    "train.num_steps=5", "train.ckpt_every=2", "train.eval_every=100", "mesh.num_devices=1", "train.feature_net='none'"
  )
  full = training.run(cfg, str(tmp_path / "full"))
  training.run(cfg, str(tmp_path / "cut"), stop_at=3)  # "interrupted" after step 3
  assert 3 in checkpoint.Checkpointer(str(tmp_path / "cut" / "checkpoints"), 2, 3).all_steps()
  resumed = training.run(cfg, str(tmp_path / "cut"))
  assert int(resumed.step) == int(full.step) == 5
  for a, b in zip(jax.tree.leaves(_params(full)), jax.tree.leaves(_params(resumed))):
    np.testing.assert_array_equal(a, b)
  # Each step is logged once, even though the first run logged past its last checkpoint.
  recs = [json.loads(ln) for ln in open(tmp_path / "cut" / "metrics.jsonl")]
  steps = [r["step"] for r in recs if "g_loss" in r]
  assert steps == sorted(set(steps))


@pytest.mark.parametrize("damage", ["empty", "missing_data"])
def test_broken_newest_checkpoint_falls_back(smoke_config, tmp_path, caplog, damage):
  cfg = smoke_config(
    "train.num_steps=4", "train.ckpt_every=2", "train.eval_every=100", "mesh.num_devices=1", "train.feature_net='none'"
  )
  training.run(cfg, str(tmp_path))
  ck_dir = tmp_path / "checkpoints"
  newest = ck_dir / "4"
  if damage == "empty":
    shutil.rmtree(newest)
    os.makedirs(newest)
  else:
    for f in glob.glob(str(newest / "default" / "*")):
      if os.path.isdir(f):
        shutil.rmtree(f)
      else:
        os.remove(f)
  su = training.Setup(cfg)
  ck = checkpoint.Checkpointer(str(ck_dir), 2, 3)
  with caplog.at_level(logging.WARNING):
    state, step = ck.restore_latest(su.abstract_state())
  assert step == 2 and int(state.step) == 2
  assert "step 4" in caplog.text and "unreadable" in caplog.text
  ck.close()
  # The run resumes from step 2 and can save step 4 again.
  state = training.run(cfg, str(tmp_path))
  assert int(state.step) == 4 and 4 in checkpoint.Checkpointer(str(ck_dir), 2, 3).all_steps()


def test_bad_configs_fail_before_compiling(smoke_config):
  with pytest.raises(ValueError, match=r"train.batch_size=12: must be divisible by the 8 devices"):
    training.Setup(smoke_config("train.batch_size=12"))
  with pytest.raises(ValueError, match=r"data.image_size=24 with model.latent_size=4"):
    training.Setup(smoke_config("data.image_size=24"))
  with pytest.raises(ValueError, match=r"scene size 40 for world 'city': must be a multiple of 16"):
    training.Setup(smoke_config("data.image_size=40", "model.latent_size=5"))
  with pytest.raises(ValueError, match=r"gan.loss='wasserstein'"):
    training.Setup(smoke_config("gan.loss='wasserstein'"))
  with pytest.raises(ValueError, match=r"data.channels=\('labels',\)"):
    training.Setup(smoke_config("data.channels=('labels',)"))
  with pytest.raises(ValueError, match=r"data.source='tfds' holds images only; use \('rgb',\) or \('gray',\)"):
    training.Setup(smoke_config("data.source='tfds'"))
  with pytest.raises(ValueError, match=r"no key 'batchsize'; keys are \[.*'batch_size'"):
    smoke_config("train.batchsize=8")
  with pytest.raises(ValueError, match=r"train.num_steps=0"):
    training.Setup(smoke_config("train.num_steps=0"))
  with pytest.raises(ValueError, match=r"unknown variant\(s\) \['tiny'\]"):
    load_config(os.path.join(ROOT, "configs/gan_city.py:tiny"))
  with pytest.raises(ValueError, match="mesh.num_devices=16"):
    parallel.make_mesh(16)
  with pytest.raises(ValueError, match=r"model.latent_channels=0: must be a positive integer"):
    training.Setup(smoke_config("model.latent_channels=0"))
  with pytest.raises(ValueError, match=r"data.num_train=3: must be an integer >= 8"):
    training.Setup(smoke_config("data.num_train=3"))


def test_train_on_an_image_folder(smoke_config, tmp_path):
  from PIL import Image

  rng = np.random.default_rng(0)
  os.makedirs(tmp_path / "train")
  os.makedirs(tmp_path / "held")
  for i in range(10):
    Image.fromarray(rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)).save(tmp_path / "train" / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (30, 20 + i, 3), dtype=np.uint8)).save(tmp_path / "held" / f"{i}.png")
  cfg = smoke_config(
    "data.source='folder'",
    f"data.path={str(tmp_path / 'train')!r}",
    f"data.test_path={str(tmp_path / 'held')!r}",
    "data.channels=('rgb',)",
    "train.num_steps=2",
    "train.eval_every=2",
    "mesh.num_devices=1",
  )
  state = training.run(cfg, str(tmp_path / "run"))
  assert int(state.step) == 2
  assert os.path.exists(tmp_path / "run" / "samples" / "latest.png")


@pytest.mark.slow
def test_train_cli_smoke_then_resume(data_dir, tmp_path):
  work = str(tmp_path / "w")
  cmd = [
    sys.executable,
    os.path.join(ROOT, "train.py"),
    "--config=" + os.path.join(ROOT, "configs/gan_city.py:smoke"),
    f"--workdir={work}",
    f"--config.data.data_dir={data_dir}",
  ]
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  # The console: one line per phase, in order; no library INFO lines by default.
  phases = [ln for ln in r.stderr.splitlines() if ln.startswith("[genenv] ")]
  order = [
    "checking the config",
    "preparing the data",
    "data: 256 training",
    "initialised a new run",
    "evaluating step 0",
  ]
  order += ["step 0: KID", "training steps 0..6", "step 6: KID"]
  at = [next(i for i, ln in enumerate(phases) if ln[len("[genenv] ") :].startswith(o)) for o in order]
  assert at == sorted(at), phases
  info = [ln for ln in r.stderr.splitlines() if re.match(r"^I\d{4} |^INFO[: ]", ln)]
  assert not info, info[:5]
  assert glob.glob(os.path.join(work, "tensorboard", "events.out.tfevents.*"))
  assert os.path.exists(os.path.join(work, "samples", "step_0000006.png"))
  lines = open(os.path.join(work, "metrics.jsonl")).read().splitlines()
  assert {json.loads(ln)["step"] for ln in lines} == {0, 2, 4, 6}
  r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
  assert r.returncode == 0 and "resumed from step 6" in r.stderr
  assert open(os.path.join(work, "metrics.jsonl")).read().splitlines() == lines
  bad = subprocess.run(cmd + ["--config.gan.loss=wgan"], capture_output=True, text=True, env=env, timeout=300)
  assert bad.returncode == 1 and "gan.loss='wgan'" in bad.stderr and "Traceback" not in bad.stderr


def test_unknown_override_flag_names_the_keys():
  from genenv_jax.config_utils import check_override_flags

  cfg = "--config=" + os.path.join(ROOT, "configs/gan_city.py:smoke")
  assert check_override_flags([cfg, "--config.train.batch_size=8", "--workdir=w"]) is None
  msg = check_override_flags([cfg, "--config.train.batchsize=8"])
  assert "train has no key 'batchsize'" in msg and "'batch_size'" in msg
  assert "no key 'trian'" in check_override_flags([cfg, "--config.trian.batch_size=8"])
