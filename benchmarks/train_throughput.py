r"""Train throughput of a config, and the step's FLOP utilisation.

Runs each device count in its own subprocess (XLA_FLAGS must be set before
JAX is imported) and prints the ratios side by side:

  python benchmarks/train_throughput.py --config=configs/gan_city.py:cpu --devices=1,8

FLOP utilisation = XLA's cost analysis of the compiled step (FLOPs per step)
x steps/s, divided by a 2048x2048 float32 matmul's FLOP/s measured in the
same process: a practical peak for this machine, not the vendor's.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(config_arg: str, steps: int, overrides: list[str]) -> dict:
  sys.path.insert(0, ROOT)
  import jax
  import jax.numpy as jnp

  from genenv_jax import training
  from genenv_jax.config_utils import load_config

  config = load_config(config_arg, overrides)
  su = training.Setup(config)
  state = su.init_state()
  batches = [su.loader.global_batch_at(s) for s in range(4)]
  compiled = su.step_fn.lower(state, batches[0]).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0))
  for i in range(3):  # warm-up
    state, m = su.step_fn(state, batches[i % 4])
  jax.block_until_ready(m)
  t = time.perf_counter()
  for i in range(steps):
    state, m = su.step_fn(state, batches[i % 4])
    if i % 4 == 3:
      jax.block_until_ready(m)
  jax.block_until_ready(m)
  dt = time.perf_counter() - t
  a = jnp.ones((2048, 2048), jnp.float32)
  mm = jax.jit(lambda x: x @ x)
  mm(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(10):
    mm(a).block_until_ready()
  peak = 10 * 2 * 2048**3 / (time.perf_counter() - t)
  sps = steps / dt
  return {
    "devices": jax.device_count(),
    "steps_per_s": sps,
    "images_per_s": sps * config.train.batch_size,
    "step_gflop": flops / 1e9,
    "achieved_gflop_s": flops * sps / 1e9,
    "matmul_peak_gflop_s": peak / 1e9,
    "flop_utilisation": flops * sps / peak,
  }


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="configs/gan_city.py:cpu")
  p.add_argument("--devices", default="1,8")
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--child", action="store_true")
  p.add_argument("overrides", nargs="*", help="config overrides like train.batch_size=64")
  a = p.parse_args()
  if a.child:
    print("RESULT " + json.dumps(measure(a.config, a.steps, a.overrides)))
    return
  rows = []
  for n in [int(d) for d in a.devices.split(",")]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
    out = subprocess.run(
      [sys.executable, __file__, "--child", f"--config={a.config}", f"--steps={a.steps}", *a.overrides],
      env=env,
      capture_output=True,
      text=True,
      check=True,
    ).stdout
    rows.append(json.loads(out.split("RESULT ", 1)[1]))
  base = rows[0]["images_per_s"]
  print(f"config {a.config} {' '.join(a.overrides)}")
  print(f"{'devices':>7} {'img/s':>8} {'vs first':>8} {'GFLOP/step':>10} {'GFLOP/s':>8} {'peak':>7} {'util':>6}")
  for r in rows:
    print(
      f"{r['devices']:>7} {r['images_per_s']:>8.1f} {r['images_per_s'] / base:>8.2f} {r['step_gflop']:>10.3f} "
      f"{r['achieved_gflop_s']:>8.1f} {r['matmul_peak_gflop_s']:>7.0f} {r['flop_utilisation']:>6.1%}"
    )


if __name__ == "__main__":
  main()
