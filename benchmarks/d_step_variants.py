r"""The gan_city ``:cpu`` discriminator update, timed in the variants docs/benchmarks.md reports.

  python benchmarks/d_step_variants.py [--rounds=3] [--flags]

Times one jitted value-and-gradient of the D objective (non-saturating loss
on 32 reals and 32 fakes plus R1 on every 4th real: the part of the step
that holds most of its convolutions), interleaved over rounds, median ms:

* ``one op per layer``: the shipped formulation (``model.chunks=1``);
* ``chunks=2``, ``chunks=4``: the trunk on interleaved batch slices;
* ``reals+fakes in one pass``: one D call on a batch of 64 (its minibatch
  stddev groups then span both halves: a timing, not a drop-in);
* ``bfloat16``: the discriminator computing in bfloat16 (``train.precision``).

``--flags`` also runs the one-op variant in subprocesses under each XLA:CPU
flag docs/benchmarks.md lists, beside a subprocess with no flag.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = [
  "",
  "--xla_cpu_use_xnnpack=false",
  "--xla_cpu_use_onednn=true",
  "--xla_cpu_experimental_onednn_custom_call=true",
  "--xla_cpu_experimental_ynn_fusion_type=",
  "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
]


def variants():
  sys.path.insert(0, ROOT)
  import jax
  import jax.numpy as jnp

  from genenv_jax.families import gan

  key = jax.random.PRNGKey(0)
  x = jax.random.uniform(key, (32, 32, 32, 9), minval=-1, maxval=1)
  f = jax.random.uniform(jax.random.fold_in(key, 1), (32, 32, 32, 9), minval=-1, maxval=1)

  def objective(d, joint=False):
    def loss(p):
      if joint:
        logits = d.apply(p, jnp.stack([x, f], 1).reshape(64, 32, 32, 9)).reshape(32, 2)
        r, q = logits[:, 0], logits[:, 1]
      else:
        r, q = d.apply(p, x), d.apply(p, f)
      g = jax.grad(lambda xx: jnp.sum(d.apply(p, xx)))(x[::4])
      return jnp.mean(jax.nn.softplus(-r)) + jnp.mean(jax.nn.softplus(q)) + 0.5 * jnp.mean(jnp.sum(g**2, (1, 2, 3)))

    return jax.jit(jax.value_and_grad(loss))

  base = gan.Discriminator(3, 16, 128, 1, 4)
  params = base.init(key, x)
  fns = {
    "one op per layer": objective(base),
    "chunks=2": objective(gan.Discriminator(3, 16, 128, 1, 4, chunks=2)),
    "chunks=4": objective(gan.Discriminator(3, 16, 128, 1, 4, chunks=4)),
    "reals+fakes in one pass": objective(base, joint=True),
    "bfloat16": objective(gan.Discriminator(3, 16, 128, 1, 4, dtype=jnp.bfloat16)),
  }
  for fn in fns.values():
    jax.block_until_ready(fn(params))
  return fns, params


def time_ms(fn, params, reps=10) -> float:
  import jax

  t = time.perf_counter()
  for _ in range(reps):
    out = fn(params)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / reps * 1e3


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--flags", action="store_true", help="also time the one-op variant under each XLA:CPU flag")
  p.add_argument("--child", action="store_true")
  a = p.parse_args()
  if a.child:  # one variant under this process's XLA_FLAGS
    fns, params = variants()
    print("RESULT", statistics.median(time_ms(fns["one op per layer"], params) for _ in range(a.rounds)))
    return
  os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  fns, params = variants()
  runs = {k: [] for k in fns}
  for _ in range(a.rounds):
    for k, fn in fns.items():
      runs[k].append(time_ms(fn, params))
  base = statistics.median(runs["one op per layer"])
  print(f"D objective value-and-grad, gan_city :cpu widths, batch 32 + 32, R1 on 8; {a.rounds} interleaved rounds")
  for k, v in runs.items():
    m = statistics.median(v)
    print(f"  {k:<28} {m:7.1f} ms  {m / base:5.2f}x  (min {min(v):.1f}, max {max(v):.1f})")
  if a.flags:
    print("one op per layer, one subprocess per XLA:CPU flag:")
    for flag in FLAGS:
      env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count=1 {flag}".strip())
      out = subprocess.run(
        [sys.executable, __file__, "--child", f"--rounds={a.rounds}"], env=env, capture_output=True, text=True
      )
      ms = out.stdout.split("RESULT ", 1)[1].split()[0] if "RESULT " in out.stdout else "failed"
      print(f"  {flag or '(no flag)':<76} {float(ms) if ms != 'failed' else float('nan'):7.1f} ms")


if __name__ == "__main__":
  main()
