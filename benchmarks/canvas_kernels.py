r"""A model's served chunk with XLA:CPU's default convolutions against Eigen's, side by side in one process.

  python benchmarks/canvas_kernels.py --model=fm_city_regions [--rounds=2] [--json=FILE]

The world server draws a flow-matching model in 256-px chunks, each one
canvas ODE (the chunk plus one window of margin; for fm_city_regions 361
overlapping 32-px windows x 32 network evaluations). ``serve.py
--cpu_convolutions=auto`` (the default) compiles it with Eigen's
convolutions on a CPU (``genenv_jax.cpu_kernels``). This prints the time of
one chunk with each choice, interleaved over ``--rounds`` (a new chunk each
time, so nothing is cached; compile excluded), the ratio xla / eigen, and
the largest difference between the two (float rounding: the kernels sum in
another order).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="fm_city_regions", help="a shipped flow-matching model")
  p.add_argument("--workdir", default="", help="or a train.py workdir")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--json", default="")
  args = p.parse_args()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from genenv_jax.server import sources

  if args.workdir:
    from genenv_jax import trained

    model = trained.load(args.workdir)
  else:
    from genenv_jax import models

    model = models.load(args.model)
  srcs = {k: sources.ModelSource(model, cpu_convolutions=k) for k in ("xla", "eigen")}
  if srcs["xla"].kind != "canvas":
    sys.exit(f"{model.workdir}: not a flow-matching canvas (family {model.config.family})")
  times = {k: [] for k in srcs}
  last = {}
  for k, s in srcs.items():  # compile on a chunk nobody times
    s._chunk_tensors(7, [(0, 0)])
  for r in range(args.rounds):
    for k in ("xla", "eigen") if r % 2 == 0 else ("eigen", "xla"):
      t0 = time.perf_counter()
      last[k] = srcs[k]._chunk_tensors(0, [(r, 0)])[(r, 0)]
      times[k].append(time.perf_counter() - t0)
      print(f"  round {r} {k}: {times[k][-1]:.1f} s", flush=True)
    diff = float(np.abs(last["xla"] - last["eigen"]).max())
  med = {k: statistics.median(v) for k, v in times.items()}
  print(f"\n{model.workdir}: one 256-px chunk on {os.cpu_count()} cores")
  print(f"  xla   {med['xla']:.1f} s\n  eigen {med['eigen']:.1f} s\n  xla / eigen = {med['xla'] / med['eigen']:.2f}")
  print(f"  largest difference of the model tensor (in [-1, 1]): {diff:.2g}")
  if args.json:
    with open(args.json, "w") as f:
      out = {"model": os.path.relpath(str(model.workdir), ROOT), "cpu_count": os.cpu_count(), "seconds": times}
      out.update(median_s=med, ratio_xla_over_eigen=med["xla"] / med["eigen"], max_abs_diff=diff)
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
