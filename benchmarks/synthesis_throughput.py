r"""sample.py throughput against the bare generator, and large-scene peak memory.

  python benchmarks/synthesis_throughput.py --config=configs/gan_city.py:cpu --num_samples=4096

Prints, measured side by side in one run on this machine:
  * the bare jitted generator (samples/s, nothing written) and
  * sample.py end to end (generate, encode, write shards; same batch size),
    each with XLA:CPU's default convolution kernels ('xla') and with Eigen's
    ('eigen', what a new sample.py output uses on a CPU), alternating rounds,
  * a one-sample-at-a-time loop (as StyleGAN's gen_images.py: one call and
    one PNG per seed),
  * peak resident memory of sample.py --scene_size at 1024x1024 and 4096x4096.
"""

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
KERNELS = ("xla", "eigen")  # synthesis's cpu_convolutions choices, compared side by side


_PEAK = (
  "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(cmd) -> float:
  """Peak RSS of ``cmd``, measured by a fresh parent that waits only for it."""
  out = subprocess.run([sys.executable, "-c", _PEAK, *cmd], check=True, capture_output=True, text=True).stdout
  return int(out.strip().splitlines()[-1]) / 1024.0


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="configs/gan_city.py:cpu")
  p.add_argument("--num_samples", type=int, default=32768)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--single", type=int, default=200, help="samples for the one-at-a-time loop")
  p.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two kernel choices")
  p.add_argument("--skip_memory", action="store_true")
  a = p.parse_args()

  import jax
  import numpy as np
  from PIL import Image

  from genenv_jax import parallel, synthesis, trained, training
  from genenv_jax.config_utils import load_config

  tmp = tempfile.mkdtemp()
  work = os.path.join(tmp, "work")
  cfg = load_config(a.config, ["data.num_train=512", "data.num_test=64", "train.num_steps=1", "train.eval_every=1000"])
  training.run(cfg, work)
  model = trained.load(work)

  # Bare generator (the jitted function sample.py uses, nothing written) and
  # sample.py end to end, with XLA:CPU's default convolution kernels and with
  # Eigen's ('eigen', what a new output gets on a CPU), alternating rounds.
  idx = np.arange(a.batch_size, dtype=np.int32)
  n_batches = max(1, a.num_samples // a.batch_size)
  gens = {k: synthesis.make_generate(model, parallel.local_mesh(), 8, 1.0, -1, k) for k in KERNELS}
  # Compile both bare generators and run each sample.py path once before timing. Each synthesis.run
  # builds (and compiles) its own generator, so the end-to-end rows include one compile, as sample.py does.
  for k, gen in gens.items():
    jax.block_until_ready(gen(model.params, idx, 0))
    synthesis.run(model, os.path.join(tmp, f"warm_{k}"), a.batch_size, batch_size=a.batch_size, progress=False,
                  cpu_convolutions=k)  # fmt: skip
  bare, e2e = {k: [] for k in KERNELS}, {k: [] for k in KERNELS}
  for r in range(a.rounds):
    for k, gen in gens.items():
      t = time.perf_counter()
      for b in range(n_batches):
        out = gen(model.params, idx + b * a.batch_size, 0)
      jax.block_until_ready(out)
      bare[k].append(n_batches * a.batch_size / (time.perf_counter() - t))
      t = time.perf_counter()
      synthesis.run(
        model,
        os.path.join(tmp, f"out_{k}_{r}"),
        n_batches * a.batch_size,
        batch_size=a.batch_size,
        shard_size=max(a.batch_size, 1024),
        progress=False,
        cpu_convolutions=k,
      )
      e2e[k].append(n_batches * a.batch_size / (time.perf_counter() - t))
  bare, e2e = ({k: statistics.median(v) for k, v in d.items()} for d in (bare, e2e))

  # One at a time, as a per-seed loop does.
  one = jax.jit(lambda params, key: model.family.sample(params, key, 1))
  jax.block_until_ready(one(model.params, jax.random.PRNGKey(0)))
  t = time.perf_counter()
  for i in range(a.single):
    x = np.asarray(one(model.params, jax.random.PRNGKey(i)))
    img = np.clip((x[0, ..., :3] + 1) * 127.5, 0, 255).astype(np.uint8)
    Image.fromarray(img).save(io.BytesIO(), format="PNG")
  single = a.single / (time.perf_counter() - t)

  print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; config {a.config}; batch {a.batch_size}")
  print(f"median of {a.rounds} rounds; ratios against the bare generator with XLA's default kernels")
  ref = bare["xla"]
  for k in KERNELS:
    print(f"{'bare jitted generator, ' + k:<40} {bare[k]:10.1f} samples/s  {bare[k] / ref:.2f}")
    print(f"{'sample.py end to end, ' + k:<40} {e2e[k]:10.1f} samples/s  {e2e[k] / ref:.2f}")
  print(f"{'one sample at a time + PNG':<40} {single:10.1f} samples/s  {single / ref:.2f}")
  if not a.skip_memory:
    for size in (1024, 4096):
      out = os.path.join(tmp, f"big{size}")
      mb = peak_rss_mb(
        [
          sys.executable,
          os.path.join(ROOT, "sample.py"),
          f"--workdir={work}",
          f"--output={out}",
          f"--scene_size={size}x{size}",
          "--tile_cells=32",
        ]
      )
      print(f"{'large scene ' + str(size) + 'x' + str(size) + ' peak RSS':<34} {mb:10.0f} MB")
  shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
