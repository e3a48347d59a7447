"""eval.py's evaluation of a workdir: every metric beside its calibration, the same on 1 and 8 devices."""

import json
import os
import subprocess
import sys

import pytest

from genenv_jax import evaluation, parallel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURE_KEYS = {"fd", "kid", "kid_std", "precision", "recall"}


@pytest.fixture(scope="module")
def results(smoke_workdir):
  one = evaluation.evaluate_workdir(smoke_workdir, 64, batch=16, mesh=parallel.make_mesh(1))
  eight = evaluation.evaluate_workdir(smoke_workdir, 64, batch=16, mesh=parallel.make_mesh(8))
  return one, eight


def test_every_metric_is_calibrated_and_written(smoke_workdir, results):
  _, r = results
  with open(os.path.join(smoke_workdir, "eval_results.json")) as f:
    assert json.load(f) == json.loads(json.dumps(r))
  assert r["num_devices"] == 8 and r["feature_net"]["sha256"]
  for column in ("model", "real", "untrained"):
    assert FEATURE_KEYS | {"validity", "stats_distance"} <= set(r[column])
  # Real held-out scenes are the floor of each distance, the untrained generator far above it.
  assert r["real"]["validity"] == 1.0
  assert r["real"]["fd"] < 0.2 * r["untrained"]["fd"]
  assert r["real"]["kid"] < r["untrained"]["kid"] - 5 * r["untrained"]["kid_std"]
  assert r["real"]["precision"] > r["untrained"]["precision"] + 0.5


def test_one_and_eight_devices_agree(results):
  one, eight = results
  for column in ("model", "real", "untrained"):
    assert one[column] == pytest.approx(eight[column], rel=1e-3, abs=1e-4), column


def test_training_logs_the_same_metrics_at_eval_time(smoke_workdir):
  with open(os.path.join(smoke_workdir, "metrics.jsonl")) as f:
    lines = [json.loads(ln) for ln in f]
  evals = [ln for ln in lines if "eval/fd" in ln]
  assert [ln["step"] for ln in evals] == [0, 6]
  assert {f"real/{k}" for k in FEATURE_KEYS} <= set(evals[0])
  assert evals[0]["eval/fd"] > evals[0]["real/fd"]


def test_eval_cli_names_a_bad_workdir_and_feature_net(smoke_workdir, tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  cmd = [sys.executable, os.path.join(ROOT, "eval.py")]
  r = subprocess.run(cmd + [f"--workdir={tmp_path}"], capture_output=True, text=True, env=env, timeout=120)
  assert r.returncode == 1 and "no run.json" in r.stderr and "Traceback" not in r.stderr
  bad = str(tmp_path / "nope.npz")
  r = subprocess.run(
    cmd + [f"--workdir={smoke_workdir}", f"--feature_net={bad}"], capture_output=True, text=True, env=env, timeout=120
  )
  assert r.returncode == 1 and "nope.npz" in r.stderr and "Traceback" not in r.stderr


def test_layout_first_scores_the_world_rendering_of_the_model_layouts(smoke_workdir, results):
  _, by_model = results
  r = evaluation.evaluate_workdir(smoke_workdir, 64, batch=16, mesh=parallel.make_mesh(8), render="world")
  with open(os.path.join(smoke_workdir, "eval_results_render-world.json")) as f:
    assert json.load(f)["render"] == "world"
  # The layouts are the same samples: rules (read from labels and heights) agree; the pictures differ.
  assert r["model"]["validity"] == by_model["model"]["validity"]
  assert r["model"]["fd"] != pytest.approx(by_model["model"]["fd"])
  assert r["real"] == pytest.approx(by_model["real"])
  with pytest.raises(ValueError, match="render='cartoon'"):
    evaluation.evaluate_workdir(smoke_workdir, 8, render="cartoon")
  with pytest.raises(ValueError, match="render='finished': needs a built-in world with a finishing pass.*city"):
    evaluation.evaluate_workdir(smoke_workdir, 8, render="finished")
  with pytest.raises(ValueError, match="num_samples=0: must be at least 2"):
    evaluation.evaluate_workdir(smoke_workdir, 0)


def test_eval_defaults_reproduce_the_training_logs_last_evaluation(smoke_workdir):
  """eval.py's defaults (the run's eval_samples and batch size): the same samples and reference as training."""
  rows = [json.loads(ln) for ln in open(os.path.join(smoke_workdir, "metrics.jsonl"))]
  last = [r for r in rows if "eval/fd" in r][-1]
  r = evaluation.evaluate_workdir(smoke_workdir, None, mesh=parallel.make_mesh(8))
  assert r["num_samples"] == last["eval/num_samples"] == 16
  for k in ("fd", "kid", "validity", "c2st/pixels"):
    assert r["model"][k] == pytest.approx(last[f"eval/{k}"], rel=1e-4, abs=1e-6), k
    assert r["real"][k] == pytest.approx(last[f"real/{k}"], rel=1e-4, abs=1e-6), k
