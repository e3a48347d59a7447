r"""Dataset synthesis on Ray (1 and 2 local workers) beside the local path, measured in one run.

  python benchmarks/ray_synthesis.py --workdir=runs/gan_city_cpu --num_samples=2048
  python benchmarks/ray_synthesis.py --model=fm_props --num_samples=256 --batch_size=32

Prints samples/s end to end (generate, encode, write shards, provenance) for
the local ``synthesis.run`` and for ``--engine=ray`` with 1 and 2 actors on a
local Ray cluster started once (its start-up is not counted; each actor's
model loading and compile is, as a user pays it), and checks that the Ray
outputs' shard digests equal the local one's.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", default="")
  p.add_argument("--model", default="")
  p.add_argument("--num_samples", type=int, default=2048)
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--shard_size", type=int, default=256)
  p.add_argument("--chunk", type=int, default=8)
  args = p.parse_args()
  import json

  import ray

  from genenv_jax import synthesis
  from genenv_jax.synthesis import ray_engine

  if args.model:
    from genenv_jax import models

    model, source = models.load(args.model), {"model": args.model}
  else:
    from genenv_jax import trained

    model = trained.load(args.workdir)
    source = {"workdir": args.workdir, "step": model.step}
  tmp = tempfile.mkdtemp(prefix="bench_ray_")
  kw = dict(num_samples=args.num_samples, seed=0, batch_size=args.batch_size, shard_size=args.shard_size,
            chunk=args.chunk, cpu_convolutions="xla")  # fmt: skip
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  rows = []
  try:
    t0 = time.perf_counter()
    synthesis.run(model, os.path.join(tmp, "local"), progress=False, num_devices=1, **kw)
    rows.append(("local (1 process)", time.perf_counter() - t0))
    with open(os.path.join(tmp, "local", synthesis.PROVENANCE_FILE)) as f:
      want = [s["content_sha256"] for s in json.load(f)["shards"]]
    for n in (1, 2):
      out = os.path.join(tmp, f"ray{n}")
      t0 = time.perf_counter()
      ray_engine.run(model, source, out, workers=n, worker_devices=1, **kw)
      rows.append((f"ray, {n} worker{'s' if n > 1 else ''}", time.perf_counter() - t0))
      with open(os.path.join(out, synthesis.PROVENANCE_FILE)) as f:
        got = [s["content_sha256"] for s in json.load(f)["shards"]]
      assert got == want, f"ray with {n} workers: shard digests differ from the local run"
  finally:
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
  print(f"{model.config.family} ({source}), {args.num_samples} samples, {os.cpu_count()} cores")
  base = rows[0][1]
  for name, t in rows:
    print(f"{name:>20}: {t:7.1f} s  {args.num_samples / t:8.1f} samples/s  ({base / t:.2f}x local)")
  print("shard digests: identical in all three outputs")


if __name__ == "__main__":
  main()
