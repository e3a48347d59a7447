"""Small helpers shared by tests (imported, not fixtures)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import tensorflow_datasets as tfds

from genenv_jax import parallel, synthesis, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_steps(config, num_devices: int, steps: int = 3):
  """Runs ``steps`` train steps on a mesh of ``num_devices``.

  Returns:
    ([steps, k] the metrics the family declares comparable across device counts, params).
  """
  su = training.Setup(config, mesh=parallel.make_mesh(num_devices))
  keys = su.family.roles.compare
  assert keys, f"family {config.family!r} declares no metrics to compare"
  state = su.init_state()
  values = []
  for s, batch in su.loader.iterate(0, steps):
    state, m = su.step_fn(state, batch)
    m = jax.device_get(m)
    values.append([float(m[k]) for k in keys])
  return np.array(values), jax.device_get(state.params)


def assert_same_steps(reference_config, optimised_config, num_devices: int):
  """A speed option computes the reference formulation's steps: metrics and parameters equal to float rounding."""
  ref_metrics, ref_params = run_steps(reference_config, num_devices)
  got_metrics, got_params = run_steps(optimised_config, num_devices)
  np.testing.assert_allclose(got_metrics, ref_metrics, rtol=1e-4, atol=1e-5)
  assert jax.tree.structure(got_params) == jax.tree.structure(ref_params)  # checkpoints read either way
  for a, b in zip(jax.tree.leaves(ref_params), jax.tree.leaves(got_params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def feature_metrics_of_fixed_sets(mesh) -> dict:
  """FD/KID/precision/recall of two fixed random image sets, computed over ``mesh`` (any process count)."""
  from genenv_jax.metrics import feature_metrics, features

  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (37, 16, 16, 3), dtype=np.uint8)
  b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
  net = features.FeatureNet(mesh=mesh, chunk=4)
  return feature_metrics.compare(net.features(a), net.features(b), mesh)


def _checksums(output):
  with open(os.path.join(output, synthesis.PROVENANCE_FILE)) as f:
    return [s["content_sha256"] for s in json.load(f)["shards"]]


def _files(output):
  with open(os.path.join(output, synthesis.PROVENANCE_FILE)) as f:
    return [s["file_sha256"] for s in json.load(f)["shards"]]


def _sample_cmd(workdir, out, n=48):
  return [
    sys.executable,
    os.path.join(ROOT, "sample.py"),
    f"--workdir={workdir}",
    f"--output={out}",
    f"--num_samples={n}",
    "--shard_size=8",
    "--batch_size=8",
    "--seed=4",
  ]


def check_sigkill_resume(workdir, tmp_path):
  """sample.py killed (SIGKILL) after 1 and after 3 shards, then rerun: the same bytes as an uninterrupted run."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  ref = str(tmp_path / "ref")
  subprocess.run(_sample_cmd(workdir, ref), env=env, check=True, capture_output=True, timeout=300)
  for kill_after in (1, 3):
    out = str(tmp_path / f"killed{kill_after}")
    p = subprocess.Popen(_sample_cmd(workdir, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
      done = [f for f in os.listdir(out) if "array_record" in f] if os.path.isdir(out) else []
      if len(done) >= kill_after:
        break
      time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = subprocess.run(_sample_cmd(workdir, out), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _checksums(out) == _checksums(ref)
    assert _files(out) == _files(ref)  # the files too: records serialise with a fixed field order
    ds = tfds.builder_from_directory(out).as_data_source("train")
    assert sorted(int(ds[i]["index"]) for i in range(len(ds))) == list(range(48))
  # Rerunning a finished command does nothing.
  before = {f: os.path.getmtime(os.path.join(ref, f)) for f in os.listdir(ref)}
  subprocess.run(_sample_cmd(workdir, ref), env=env, check=True, capture_output=True, timeout=300)
  assert {f: os.path.getmtime(os.path.join(ref, f)) for f in os.listdir(ref)} == before


def convolutions_in_and_out_of_ynnpack(compiled_text: str) -> tuple[int, int, int]:
  """(convolutions inside YNNPACK fusions, convolutions outside them, YNNPACK fusions) of a compiled CPU program."""
  bodies, current = {}, None
  for line in compiled_text.splitlines():
    head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
    if head:
      current = bodies.setdefault(head.group(1), [])
    elif current is not None:
      current.append(line)
  calls = [line for lines in bodies.values() for line in lines if "ynn_fusion" in line and "calls=" in line]
  ynn = {name for line in calls for name in re.findall(r"calls=%([\w.\-]+)", line)}
  inside = sum(" convolution(" in line for name in ynn for line in bodies.get(name, []))
  return inside, compiled_text.count(" convolution(") - inside, len(calls)


def load_script(path: str):
  """A tool or benchmark script (``tools/NAME.py``) loaded as a module, for its functions.

  Scripts define absl flags when imported, and two scripts loaded into one test process (xdist puts several test
  files in one worker) may define the same name (``--output``). The flags a script defines are removed again once
  it is loaded: tests call its functions, never its ``main``.
  """
  import importlib.util

  from absl import flags

  before = set(flags.FLAGS)
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f"script_{name}", os.path.join(ROOT, path))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  for f in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, f)
  return mod


MU, S = 0.5, 0.3  # the closed-form hierarchical levels' target mean and spread (tests/test_hier*.py)


def toward(target, x, t):
  """The exact velocity of straight paths from N(0, I) to N(target, S^2) per value (target may vary per pixel)."""
  import jax.numpy as jnp

  t = jnp.reshape(t, (-1,) + (1,) * (x.ndim - 1))
  var = (1 - t) ** 2 + t**2 * S**2
  return target + (-(1 - t) + t * S**2) / var * (x - t * target)


def halves_sketch():
  """A 10x14 height sketch for a 40x56 scene at factor 4: -0.8 on the left half, 0.8 on the right."""
  from genenv_jax import sketch

  sk = sketch.Sketch("s.png", np.zeros((10, 14, 2), np.float32), np.zeros((10, 14, 2), np.float32), "height")
  sk.known[:, :7, 1], sk.known[:, 7:, 1] = -0.8, 0.8
  sk.keep[..., 1] = 1.0
  return sk


def assert_sketch_held_at_0_and_ignored_at_1(model, sk):
  """A closed-form hierarchical model's 40x56 scene keeps the sketch's channel at strength 0 (the coarse map
  is the sketch, plus the fine noise), leaves its other channel free, and ignores it at strength 1.

  Returns (held, free): the scenes at strength 0 and without a sketch."""
  from genenv_jax import canvas

  nf = canvas.initial_noise(3, 0, 0, 40, 56, 2)
  held = canvas.render_scene(model, 40, 56, seed=3, sketch=sk, sketch_strength=0.0)
  np.testing.assert_allclose(held[..., 1], sk.known[..., 1].repeat(4, 0).repeat(4, 1) + S * nf[..., 1], atol=3e-4)
  free = canvas.render_scene(model, 40, 56, seed=3)
  np.testing.assert_allclose(held[..., 0], free[..., 0], atol=1e-4)  # channels the sketch leaves free
  ignored = canvas.render_scene(model, 40, 56, seed=3, sketch=sk, sketch_strength=1.0)
  np.testing.assert_allclose(ignored, free, atol=1e-5)
  return held, free


def hier3_smoke_setup(data_dir, *overrides):
  """``configs/fm_city_hier.py:smoke`` with a top level (``hier.top_factor=16``) on one device, batch 8, and
  ``overrides``, as a ``training.Setup`` (tests/test_hier3.py, tests/test_coarse_window.py)."""
  import os

  from genenv_jax import training
  from genenv_jax.config_utils import load_config

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  base = [f"data.data_dir={data_dir!r}", "hier.top_factor=16", "mesh.num_devices=1", "train.batch_size=8"]
  return training.Setup(load_config(os.path.join(root, "configs/fm_city_hier.py:smoke"), [*base, *overrides]))
