r"""Random-SIGKILL trials of training and synthesis: does every interrupted run end exactly like an uninterrupted one?

  python tools/fault_injection.py --trials=5

Not run in CI (minutes of subprocesses). Each training trial starts
``train.py`` (city GAN smoke config, 12 steps, checkpoints every 3 steps,
logging every step) and SIGKILLs it after a random delay, again and again,
until a run finishes; then it compares the final checkpoint's arrays with an
uninterrupted reference (bitwise) and counts the metric rows lost or doubled.
Each synthesis trial does the same with ``sample.py`` (64 samples in 8
shards) and compares shard files and record indices. Prints the counts.
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere


def _env():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = ROOT
  return env


def _train_cmd(work, data_dir):
  return [
    sys.executable,
    os.path.join(ROOT, "train.py"),
    "--config=" + os.path.join(ROOT, "configs/gan_city.py:smoke"),
    f"--workdir={work}",
    f"--config.data.data_dir={data_dir}",
    "--config.train.num_steps=12",
    "--config.train.ckpt_every=3",
    "--config.train.eval_every=6",
    "--config.train.log_every=1",
    "--config.train.feature_net=none",
  ]


def _sample_cmd(work, out):
  return [
    sys.executable,
    os.path.join(ROOT, "sample.py"),
    f"--workdir={work}",
    f"--output={out}",
    "--num_samples=64",
    "--shard_size=8",
    "--batch_size=8",
  ]


def _until_done(cmd, rng, max_delay, log):
  """Runs ``cmd``, SIGKILLing it after random delays, until one run exits 0; returns the kill count."""
  kills = 0
  while True:
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    delay = rng.uniform(0.5, max_delay) if kills < 8 else None  # at most 8 kills, then let it finish
    try:
      _, err = p.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
      p.send_signal(signal.SIGKILL)
      p.wait()
      kills += 1
      continue
    if p.returncode != 0:
      log.append(err[-500:])
      raise RuntimeError(f"{cmd[1]} failed after {kills} kills: {err[-500:]}")
    return kills


def _final_arrays(work):
  import jax
  import numpy as np

  from genenv_jax import trained

  m = trained.load(work)
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get((m.train_params, m.params)))]


def _rows(work):
  with open(os.path.join(work, "metrics.jsonl")) as f:
    rows = [json.loads(ln) for ln in f]
  return collections.Counter((r["step"], any(k.startswith("eval/") for k in r)) for r in rows)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--trials", type=int, default=5)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--max_delay", type=float, default=25.0, help="seconds; kills happen uniformly before this")
  a = ap.parse_args()
  import numpy as np

  rng = random.Random(a.seed)
  tmp = tempfile.mkdtemp(prefix="genenv_faults_")
  data_dir = os.path.join(tmp, "tfds")
  log = []
  try:
    ref = os.path.join(tmp, "ref")
    subprocess.run(_train_cmd(ref, data_dir), env=_env(), check=True, capture_output=True)
    ref_arrays, ref_rows = _final_arrays(ref), _rows(ref)
    ref_out = os.path.join(tmp, "ref_out")
    subprocess.run(_sample_cmd(ref, ref_out), env=_env(), check=True, capture_output=True)
    with open(os.path.join(ref_out, "provenance.json")) as f:
      ref_files = [s["file_sha256"] for s in json.load(f)["shards"]]

    t = collections.Counter()
    for i in range(a.trials):
      work = os.path.join(tmp, f"train{i}")
      t["kills"] += _until_done(_train_cmd(work, data_dir), rng, a.max_delay, log)
      t["runs"] += 1
      got = _final_arrays(work)
      t["resumed exactly"] += all(np.array_equal(x, y) for x, y in zip(got, ref_arrays)) and len(got) == len(ref_arrays)
      rows = _rows(work)
      t["rows lost"] += sum((ref_rows - rows).values())
      t["rows doubled"] += sum(max(0, n - 1) for n in rows.values())
    s = collections.Counter()
    for i in range(a.trials):
      out = os.path.join(tmp, f"out{i}")
      s["kills"] += _until_done(_sample_cmd(ref, out), rng, a.max_delay / 3, log)
      s["runs"] += 1
      import tensorflow_datasets as tfds

      ds = tfds.builder_from_directory(out).as_data_source("train")
      idx = [int(ds[k]["index"]) for k in range(len(ds))]
      with open(os.path.join(out, "provenance.json")) as f:
        files = [x["file_sha256"] for x in json.load(f)["shards"]]
      s["byte-identical"] += files == ref_files
      s["records lost"] += len(set(range(64)) - set(idx))
      s["records doubled"] += len(idx) - len(set(idx))
    print(
      f"training  ({a.trials} trials, {t['kills']} SIGKILLs): "
      + ", ".join(f"{k} {t[k]}" for k in ("runs", "resumed exactly", "rows lost", "rows doubled"))
    )
    print(
      f"synthesis ({a.trials} trials, {s['kills']} SIGKILLs): "
      + ", ".join(f"{k} {s[k]}" for k in ("runs", "byte-identical", "records lost", "records doubled"))
    )
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return 0


if __name__ == "__main__":
  t0 = time.time()
  rc = main()
  print(f"({time.time() - t0:.0f} s)")
  sys.exit(rc)
