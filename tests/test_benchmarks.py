"""benchmarks/gpu.py's FLOP count (the one README utilisation figures divide by); profile_step.py's HLO reading."""

import json
import os
import sys

import helpers
import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name="gpu"):
  return helpers.load_script(f"benchmarks/{name}.py")


def test_step_flops_counts_what_the_compiled_cpu_step_does():
  """The abstract, uncompiled count equals XLA:CPU's count of the compiled step (convolutions included)."""
  gpu = _script()
  cfg = "configs/gan_city.py:smoke@train.batch_size=8"
  counted = gpu.step_flops(cfg, "float32")
  config, spec, family = gpu._family(cfg, "float32")
  n, size = config.train.batch_size, config.data.image_size
  assert counted["batch"] == n == 8
  batch = {"x": jnp.zeros((n, size, size, spec.channels)), "label": jnp.zeros((n,), jnp.int32)}
  state = jax.jit(family.init)(jax.random.PRNGKey(0), batch)
  cost = jax.jit(family.train_step).lower(state, batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  assert counted["flops"] > 1e8  # convolutions counted, not only elementwise work
  np.testing.assert_allclose(counted["flops"], cost["flops"], rtol=0.02)
  # Twice the batch: about twice the work (the count follows the override).
  double = gpu.step_flops("configs/gan_city.py:smoke@train.batch_size=16", "float32")
  assert 1.8 < double["flops"] / counted["flops"] < 2.1


def test_step_flops_of_a_two_level_model_counts_both_levels():
  """The two-level family's step needs the coarse windows too (``x_coarse``); it trains two U-Nets of the
  single-level size, so about twice the single-level step's work (the fine one has a few more input channels)."""
  gpu = _script()
  two = gpu.step_flops("configs/fm_city_hier.py:smoke", "float32")
  one = gpu.step_flops("configs/fm_city.py:smoke", "float32")
  assert two["batch"] == one["batch"] == 8
  assert 1.9 < two["flops"] / one["flops"] < 2.3


def test_rows_from_recounts_utilisation(tmp_path, capsys, monkeypatch):
  """An earlier log's ROW lines get their FLOPs recounted (a GPU run's own count was wrong) and MFU from them."""
  gpu = _script()
  row = {
    "config": "configs/gan_city.py:smoke@train.batch_size=8",
    "precision": "float32",
    "device": "NVIDIA H200",
    "compile_s": 1.0,
    "images_per_s": 800.0,
    "matmul_tflop_s": 400.0,
    "samples_per_s": 1.0,
    "step_tflop": 1e-9,  # the kind of count the GPU-compiled module gave
  }
  out = gpu.with_flops(row)
  flops = gpu.step_flops(row["config"], "float32")["flops"]
  steps_s = 800.0 / 8
  assert out["step_tflop"] == flops / 1e12
  np.testing.assert_allclose(out["mfu_vendor"], flops * steps_s / 494e12)
  np.testing.assert_allclose(out["mfu_matmul"], flops * steps_s / 400e12)
  log = tmp_path / "run.log"
  log.write_text("# header\nconfigs/x: 1 img/s\nROW " + json.dumps(row) + "\n")
  monkeypatch.setattr(sys, "argv", ["gpu.py", f"--rows_from={log}"])
  gpu.main()
  printed = capsys.readouterr().out
  assert "NVIDIA H200" in printed and f"{out['mfu_vendor']:.1%}" in printed


def test_a_failed_flop_count_keeps_the_measured_row(capsys, monkeypatch):
  """If counting FLOPs fails, the GPU-measured row still reaches the table, its FLOP and MFU cells 'n/a'."""
  gpu = _script()
  failed = type("R", (), {"stdout": "", "stderr": "Traceback ...\nImportError: no module", "returncode": 1})
  monkeypatch.setattr(gpu.subprocess, "run", lambda *a, **k: failed)
  row = {"config": "configs/x.py", "precision": "float32", "device": "NVIDIA H200", "compile_s": 2.0}
  row.update(images_per_s=4498.0, matmul_tflop_s=400.0, samples_per_s=7.0)
  out = gpu.with_flops(row)
  assert out["images_per_s"] == 4498.0 and out["mfu_vendor"] is None and out["step_tflop"] is None
  gpu.table([out])
  printed = capsys.readouterr().out
  assert "ImportError: no module" in printed
  line = next(ln for ln in printed.splitlines() if ln.startswith("configs/x.py"))
  assert "4498" in line and line.count("n/a") == 4


def test_profile_names_the_layout_changes_xla_leaves_unnamed():
  """The README's weight-gradient transpose shapes come from ``profile_step.py --ops``: read from a compiled step."""
  prof = _script("profile_step")

  def wgrad(x, w):
    conv = lambda w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.vjp(conv, w)[1](jnp.ones((4, 8, 8, 6)))[0]

  hlo = jax.jit(wgrad).lower(jnp.ones((4, 8, 8, 3)), jnp.ones((3, 3, 3, 6))).compile().as_text()
  inst, comps = prof.parse_hlo(hlo)
  layout = [n for n in inst if prof.kind_of(inst, comps, n).startswith("layout change") and inst[n][0] == "fusion"]
  found = {prof.transpose_of(inst, comps, n) for n in layout}
  assert "transpose f32[3,8,8,4] dimensions={3,1,2,0}" in found, found  # x: [N,H,W,C] -> [C,H,W,N]
  assert prof.transpose_of(inst, comps, next(n for n in inst if inst[n][0] == "convolution")) == ""
