r"""One accelerator benchmark: the full-size configs' train steps and sampling, float32 and bfloat16.

  bash benchmarks/gpu.sh            # what to run on a lent GPU (9-10 minutes on one H200; --budget_s)
  python benchmarks/gpu.py --configs=configs/gan_city.py --precisions=float32,bfloat16
  python benchmarks/gpu.py --configs="configs/gan_city.py@train.batch_size=1024"  # overrides after @, ';'-separated
  python benchmarks/gpu.py --rows_from=docs/gpu/h200_gan_city.log  # the table of an earlier run's log

Most of the time is compilation: on an H200 (jax 0.11.2) gan_city's step took
30 s to compile in float32 and 75 s in bfloat16 (110 s at batch 1024), plus
~60 s per row for start-up, initialisation and the sampler's compile.
``--budget_s`` starts no new row after that many seconds.

For each config (each in its own process, so memory and compile caches start
empty) and each precision the family supports, prints:

* compile time of the train step (lower + compile, no persistent cache);
* train images/s (synthetic batches of the config's shape: data content does
  not change a step's speed, and generating a 50,000-scene world would take
  longer than the benchmark);
* model FLOP utilisation: XLA's cost analysis of the step lowered for the CPU x
  steps/s, against the card's vendor peak for that precision (dense bf16
  tensor-core peak for bfloat16; TF32 tensor-core peak for float32, which is
  what XLA uses for float32 convolutions by default on NVIDIA) and against
  a matmul measured in the same process;
* sampling: ``family.sample`` of untrained parameters, jitted, samples/s
  (the generator's, ODE's or inverse flow's cost; ``sample.py`` reaches
  ~0.9 of it end to end on the CPU).

``--smoke`` runs the ``:smoke`` variants for a few steps (a CPU check that
the script works; not a measurement).
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ",".join(
  [
    "configs/gan_city.py",
    "configs/fm_city.py",
    "configs/flow_terrain.py",
    "configs/vae_terrain.py",
    "configs/fm_city_hier.py",
  ]
)
# Vendor dense peaks in TFLOP/s: (bfloat16 tensor core, TF32 tensor core). SXM parts.
PEAKS = {"H100": (989.0, 494.0), "H200": (989.0, 494.0), "A100": (312.0, 156.0), "L4": (121.0, 60.0)}


def vendor_peak(kind: str, precision: str):
  for name, (bf16, tf32) in PEAKS.items():
    if name in kind:
      return (bf16 if precision == "bfloat16" else tf32) * 1e12
  return None


def _family(config_arg: str, precision: str):
  """(config, data spec, family) for ``path[:variant][@key=value;...]`` at ``precision``."""
  sys.path.insert(0, ROOT)
  from genenv_jax import config_utils, families
  from genenv_jax import layout as layout_lib
  from genenv_jax.families import base
  from genenv_jax.scenes import get_world

  path, _, overrides = config_arg.partition("@")
  overrides = [o for o in overrides.split(";") if o] + [f"train.precision={precision!r}"]
  config = config_utils.load_config(os.path.join(ROOT, path), overrides)
  config_utils.validate(config)
  d = config.data
  layout = layout_lib.Layout.for_data(d.channels, get_world(d.world))
  spec = base.DataSpec(d.image_size, layout.num_channels, 1, layout.one_hot)
  return config, spec, families.make(config, spec)


def step_flops(config_arg: str, precision: str) -> dict:
  """FLOPs of one train step, from XLA's cost analysis of the step lowered for the CPU.

  Run with JAX_PLATFORMS=cpu. The count is the program's (the same HLO on any backend);
  on a GPU, ``Lowered.cost_analysis()`` returns None (jax-ml/jax#22713; seen with jax
  0.11.2 on an H200) and the compiled module's cost analysis counts its cuDNN convolution
  calls as zero (5.2 GFLOP for gan_city's 1.19 TFLOP step).
  """
  import jax
  import jax.numpy as jnp

  config, spec, family = _family(config_arg, precision)
  n, size = config.train.batch_size, config.data.image_size
  batch = {
    "x": jax.ShapeDtypeStruct((n, size, size, spec.channels), jnp.float32),
    "label": jax.ShapeDtypeStruct((n,), jnp.int32),
  }
  if config.family == "flow_matching_hier":  # the coarse level's window: same shape, its own batch
    batch["x_coarse"] = batch["x"]
  state = jax.eval_shape(family.init, jax.random.PRNGKey(0), batch)
  cost = jax.jit(family.train_step, donate_argnums=(0,)).lower(state, batch).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return {"flops": float(cost["flops"]), "batch": n}


def measure(config_arg: str, precision: str, seconds: float, sample_batch: int) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np

  config, spec, family = _family(config_arg, precision)
  d = config.data
  n = config.train.batch_size
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (n, d.image_size, d.image_size, spec.channels)).astype(np.float32)
  a, b = spec.one_hot
  if b > a:  # label channels: exact one-hot in {-1, 1}, as the data path gives them
    x[..., a:b] = 2.0 * np.eye(b - a, dtype=np.float32)[rng.integers(0, b - a, x.shape[:3])] - 1.0
  if config.family == "flow":  # 8-bit values, as dequantisation expects
    x = np.round((x + 1) * 127.5) / 127.5 - 1
  batch = {"x": jnp.asarray(x), "label": jnp.zeros((n,), jnp.int32)}
  if config.family == "flow_matching_hier":  # the coarse level's windows (block means of larger regions)
    batch["x_coarse"] = jnp.asarray(x[::-1])
  state = jax.jit(family.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(family.train_step, donate_argnums=(0,))
  t = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t
  for _ in range(3):
    state, m = compiled(state, batch)
  jax.block_until_ready(m)
  steps, t = 0, time.perf_counter()
  while time.perf_counter() - t < seconds:
    for _ in range(10):
      state, m = compiled(state, batch)
    jax.block_until_ready(m)
    steps += 10
  sps = steps / (time.perf_counter() - t)
  # Sampling from the (untrained) EMA parameters.
  sample = jax.jit(family.sample, static_argnums=(2,))
  jax.block_until_ready(sample(state.ema_params, jax.random.PRNGKey(1), sample_batch))
  k, t = 0, time.perf_counter()
  while time.perf_counter() - t < seconds / 2 or k < 2:
    out = sample(state.ema_params, jax.random.PRNGKey(k), sample_batch)
    k += 1
  jax.block_until_ready(out)
  samples_s = k * sample_batch / (time.perf_counter() - t)
  # A practical peak: a large matmul in the same process, in the precision being measured.
  dt = jnp.bfloat16 if precision == "bfloat16" else jnp.float32
  size = 8192 if jax.default_backend() == "gpu" else 1024
  mm = jax.jit(lambda u: u @ u)
  u = jnp.ones((size, size), dt)
  jax.block_until_ready(mm(u))
  t = time.perf_counter()
  for _ in range(10):
    r = mm(u)
  jax.block_until_ready(r)
  matmul = 10 * 2 * size**3 / (time.perf_counter() - t)
  return {
    "config": config_arg,
    "precision": precision,
    "device": jax.devices()[0].device_kind,
    "compile_s": compile_s,
    "batch": n,
    "images_per_s": sps * n,
    "matmul_tflop_s": matmul / 1e12,
    "samples_per_s": samples_s,
    "last_metrics": {key: float(v) for key, v in m.items()},
  }


def with_flops(row: dict) -> dict:
  """Adds the step's FLOPs (counted in a CPU subprocess) and the utilisation they give."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  cmd = [sys.executable, __file__, f"--flops={row['config']}|{row['precision']}"]
  r = subprocess.run(cmd, capture_output=True, text=True, env=env)
  if "FLOPS " not in r.stdout:  # keep the measured row; only the utilisation columns are lost
    print(f"counting FLOPs of {row['config']} failed; its FLOP and MFU columns stay empty:\n{r.stderr[-2000:]}")
    return dict(row, step_tflop=None, achieved_tflop_s=None, mfu_vendor=None, mfu_matmul=None)
  f = json.loads(r.stdout.split("FLOPS ", 1)[1].splitlines()[0])
  steps_s = row["images_per_s"] / f["batch"]
  peak = vendor_peak(row["device"], row["precision"])
  return dict(
    row,
    step_tflop=f["flops"] / 1e12,
    achieved_tflop_s=f["flops"] * steps_s / 1e12,
    mfu_vendor=f["flops"] * steps_s / peak if peak else None,
    mfu_matmul=f["flops"] * steps_s / (row["matmul_tflop_s"] * 1e12),
  )


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--configs", default=CONFIGS)
  p.add_argument("--precisions", default="float32,bfloat16")
  p.add_argument("--seconds", type=float, default=8.0, help="timed train steps per row (sampling: half)")
  p.add_argument("--budget_s", type=float, default=420.0, help="start no new row after this many seconds")
  p.add_argument("--sample_batch", type=int, default=1024)
  p.add_argument("--smoke", action="store_true", help="the :smoke variants, briefly (checks the script on a CPU)")
  p.add_argument("--skip_flops", action="store_true", help="no FLOP count at the end (recount later with --rows_from)")
  p.add_argument("--rows_from", default="", help="print the table of an earlier run's log (its ROW lines)")
  p.add_argument("--child", default="")
  p.add_argument("--flops", default="")
  a = p.parse_args()
  if a.child:
    cfg, precision = a.child.split("|")
    print("RESULT " + json.dumps(measure(cfg, precision, a.seconds, a.sample_batch)), flush=True)
    return
  if a.flops:
    print("FLOPS " + json.dumps(step_flops(*a.flops.split("|"))), flush=True)
    return
  if a.rows_from:
    with open(a.rows_from) as f:
      rows = [json.loads(line[4:]) for line in f if line.startswith("ROW ")]
    return table([with_flops(r) for r in rows])
  sys.path.insert(0, ROOT)
  from genenv_jax import config_utils, families

  rows, start = [], time.perf_counter()
  for cfg in a.configs.split(","):
    path, at, overrides = cfg.partition("@")
    cfg = path + (":smoke" if a.smoke else "") + at + overrides
    family = config_utils.load_config(os.path.join(ROOT, path + (":smoke" if a.smoke else "")), []).family
    for precision in a.precisions.split(","):
      if precision not in families.entry(family).precisions:
        print(f"{cfg} {precision}: not offered by the {family} family", flush=True)
        continue
      if time.perf_counter() - start > a.budget_s:
        print(f"{cfg} {precision}: not started (--budget_s={a.budget_s:.0f} spent)", flush=True)
        continue
      cmd = [sys.executable, __file__, f"--child={cfg}|{precision}", f"--seconds={a.seconds}"]
      cmd.append(f"--sample_batch={a.sample_batch}")
      r = subprocess.run(cmd, capture_output=True, text=True)
      if "RESULT " not in r.stdout:
        # The end of the child's traceback, so one look at a remote log says why.
        tail = "\n    ".join(r.stderr.strip().splitlines()[-15:] or ["no output"])
        print(f"{cfg} {precision}: not measured (exit {r.returncode}):\n    {tail}", flush=True)
        continue
      rows.append(json.loads(r.stdout.split("RESULT ", 1)[1].splitlines()[0]))
      row = rows[-1]  # FLOPs are counted after all rows (CPU work between GPU measurements)
      print(f"{cfg} {precision}: {row['images_per_s']:.0f} img/s, compile {row['compile_s']:.1f} s", flush=True)
      print("ROW " + json.dumps(row), flush=True)  # each row as soon as it exists (a run cut short keeps them)
  if not rows:
    raise SystemExit("no row measured")
  if a.skip_flops:  # device time is dear: the count is the same program's on any backend
    return table([dict(r, step_tflop=None, achieved_tflop_s=None, mfu_vendor=None, mfu_matmul=None) for r in rows])
  table([with_flops(r) for r in rows])


def table(rows):
  print(f"\ndevice: {rows[0]['device']}")
  head = f"{'config':<44} {'precision':<9} {'img/s':>8} {'TFLOP/step':>10} {'TFLOP/s':>8} {'MFU vendor':>10}"
  print(head + f" {'MFU matmul':>10} {'compile s':>9} {'samples/s':>9}")

  def cell(v, fmt, width):
    return f"{v:>{width}{fmt}}" if v is not None else f"{'n/a':>{width}}"

  for r in rows:
    print(
      f"{r['config']:<44} {r['precision']:<9} {r['images_per_s']:>8.0f} {cell(r['step_tflop'], '.4f', 10)} "
      f"{cell(r['achieved_tflop_s'], '.2f', 8)} {cell(r['mfu_vendor'], '.1%', 10)} "
      f"{cell(r['mfu_matmul'], '.1%', 10)} {r['compile_s']:>9.1f} {r['samples_per_s']:>9.0f}"
    )
  print("\nRESULTS " + json.dumps(rows))


if __name__ == "__main__":
  main()
