r"""Convolution reformulations tried for the CPU steps, and dropped: the numbers in docs/benchmarks.md.

  python benchmarks/conv_variants.py --layers            # single layers, one process (~1 min)
  python benchmarks/conv_variants.py --steps [--rounds=2]  # whole :cpu steps, one process per variant

``--layers`` times, at the GAN's and Glow's layer sizes (batch 32):

* a 3x3 convolution with XLA:CPU's default kernels (YNNPACK, one thread)
  and with ``train.cpu_convolutions='eigen'`` (Eigen, all threads);
* a 1x1 convolution through ``lax.conv_general_dilated`` against the same
  product as a ``dot``, forward and forward plus both gradients;
* a 3x3 weight gradient: XLA's (a convolution plus the transposes that feed
  it) against nine matrix products, one per kernel tap.

``--steps`` times the whole train step of gan_city, vae_terrain and
flow_terrain (``:cpu``), each variant in its own process, interleaved over
``--rounds``, median of 3x10 steps per process:

* ``shipped``;
* ``1x1 as dot``: every ``nn.Conv`` with a 1x1 kernel computed as a ``dot``
  (the same parameters and initialisation; float rounding differs);
* ``scheduler off``: ``--xla_cpu_enable_concurrency_optimized_scheduler=false``
  (the default is on: this shows what it is worth).

The first is the flow's opt-in ``flow.conv1x1_as_dot`` (``blocks.conv_or_dot``,
applied there to the couplings' 1x1 layers); the per-tap weight gradient is
not in the library: docs/benchmarks.md says why.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_CONFIGS = ["configs/gan_city.py:cpu", "configs/vae_terrain.py:cpu", "configs/flow_terrain.py:cpu"]
VARIANTS = {
  "shipped": ("", False),
  "1x1 as dot": ("", True),
  "scheduler off": ("--xla_cpu_enable_concurrency_optimized_scheduler=false", False),
}


def _ms(fn, *args, reps=20, rounds=5):
  import jax

  out = fn(*args)
  jax.block_until_ready(out)
  times = []
  for _ in range(rounds):
    t = time.perf_counter()
    for _ in range(reps):
      out = fn(*args)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - t) / reps * 1e3)
  return statistics.median(times)


def layers():
  import jax
  import jax.numpy as jnp
  import numpy as np

  def conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def dot(x, w):
    return jnp.dot(x, w[0, 0])

  def grads(f):
    return jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.tanh(f(x, w))), argnums=(0, 1)))

  rng = np.random.default_rng(0)
  print("1x1 convolution, batch 32 (ms): conv forward / dot forward; conv fwd+grads / dot fwd+grads")
  for h, c, co in [(16, 48, 48), (32, 16, 32), (16, 32, 64), (8, 128, 64)]:
    x = jnp.asarray(rng.normal(size=(32, h, h, c)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(1, 1, c, co)) * 0.1, jnp.float32)
    f = [_ms(jax.jit(conv), x, w), _ms(jax.jit(dot), x, w), _ms(grads(conv), x, w), _ms(grads(dot), x, w)]
    print(f"  {h}x{h}, {c}->{co}: {f[0]:.2f} / {f[1]:.2f}; {f[2]:.2f} / {f[3]:.2f}")

  def wgrad_xla(x, w, dy):
    return jax.vjp(lambda w: conv3(x, w), w)[1](dy)[0]

  def conv3(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def wgrad_taps(x, w, dy):
    kh, kw, ci, co = w.shape
    n, h, wd, _ = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    d2 = dy.reshape(-1, co)
    taps = [
      jax.lax.dot_general(xp[:, i : i + h, j : j + wd, :].reshape(-1, ci), d2, (((0,), (0,)), ((), ())))
      for i in range(kh)
      for j in range(kw)
    ]
    return jnp.stack(taps).reshape(kh, kw, ci, co)

  sys.path.insert(0, ROOT)
  from genenv_jax import cpu_kernels

  print("3x3 convolution forward, batch 32: XLA:CPU's default (YNNPACK) / train.cpu_convolutions='eigen' (ms, GFLOP/s)")
  rng3 = np.random.default_rng(3)  # its own stream: the checks below draw what they always drew
  for h, c, co in [(32, 32, 32), (16, 64, 64), (8, 128, 128)]:
    x = jnp.asarray(rng3.normal(size=(32, h, h, c)), jnp.float32)
    w = jnp.asarray(rng3.normal(size=(3, 3, c, co)) * 0.05, jnp.float32)
    flop = 2 * 32 * h * h * 9 * c * co
    ms = [_ms(jax.jit(conv3, compiler_options=cpu_kernels.compiler_options(k)), x, w) for k in ("xla", "eigen")]
    print(f"  {h}x{h}, {c}->{co}: {ms[0]:.2f} ({flop / ms[0] / 1e6:.0f}) / {ms[1]:.2f} ({flop / ms[1] / 1e6:.0f})")

  print("3x3 weight gradient, batch 32 (ms): XLA's convolution (with its transposes) / nine per-tap products")
  for h, c, co in [(32, 32, 32), (16, 64, 64), (8, 128, 128), (16, 48, 16)]:
    x = jnp.asarray(rng.normal(size=(32, h, h, c)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, c, co)) * 0.05, jnp.float32)
    dy = jnp.asarray(rng.normal(size=(32, h, h, co)), jnp.float32)
    a, b = jax.jit(wgrad_xla), jax.jit(wgrad_taps)
    np.testing.assert_allclose(a(x, w, dy), b(x, w, dy), rtol=1e-3, atol=1e-2)  # the same gradient (entries ~1e2)
    print(f"  {h}x{h}, {c}->{co}: {_ms(a, x, w, dy):.2f} / {_ms(b, x, w, dy):.2f}")


def step_child(config: str, pointwise_dot: bool) -> float:
  sys.path.insert(0, ROOT)
  import typing

  import flax.linen as nn
  import jax

  if pointwise_dot:  # before the library builds its modules: every nn.Conv gets the dot path
    from genenv_jax.nets.blocks import conv_or_dot

    class Conv(nn.Conv):
      conv_general_dilated: typing.Any = conv_or_dot

    nn.Conv = Conv
  from genenv_jax import training
  from genenv_jax.config_utils import load_config

  su = training.Setup(load_config(os.path.join(ROOT, config)))
  state, batch = su.init_state(), su.loader.global_batch_at(0)
  for _ in range(3):
    state, m = su.step_fn(state, batch)
  jax.block_until_ready(m)
  times = []
  for _ in range(3):
    t = time.perf_counter()
    for _ in range(10):
      state, m = su.step_fn(state, batch)
    jax.block_until_ready(m)
    times.append((time.perf_counter() - t) / 10 * 1e3)
  return statistics.median(times)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--layers", action="store_true")
  p.add_argument("--steps", action="store_true")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--configs", default=",".join(STEP_CONFIGS))
  p.add_argument("--child", default="")
  a = p.parse_args()
  if a.child:
    config, dot = a.child.split("|")
    print("RESULT " + json.dumps(step_child(config, dot == "1")), flush=True)
    return
  if not (a.layers or a.steps):
    p.error("say --layers, --steps or both")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  if a.layers:
    os.environ.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    layers()
  if a.steps:
    print(f"whole train steps (ms, median of 3x10 steps per process; {a.rounds} interleaved rounds)")
    for config in a.configs.split(","):
      runs = {k: [] for k in VARIANTS}
      for _ in range(a.rounds):
        for name, (flag, dot) in VARIANTS.items():
          env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count=1 {flag}".strip()
          cmd = [sys.executable, __file__, f"--child={config}|{int(dot)}"]
          out = subprocess.run(cmd, env=env, capture_output=True, text=True)
          if "RESULT " not in out.stdout:
            raise SystemExit(f"{config} {name}: failed\n{out.stderr[-2000:]}")
          runs[name].append(json.loads(out.stdout.split("RESULT ", 1)[1].splitlines()[0]))
      base = statistics.median(runs["shipped"])
      cells = [
        f"{k} {' / '.join(f'{v:.1f}' for v in vs)} ({statistics.median(vs) / base:.2f}x)" for k, vs in runs.items()
      ]
      print(f"  {config}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
  main()
