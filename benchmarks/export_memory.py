r"""Peak memory of engine exports of a model's large scene: flat in the scene size, because it streams.

  python benchmarks/export_memory.py                  # Unity exports of 1025x1025 and 4097x4097
  python benchmarks/export_memory.py --sizes=1025,2049 --formats=unity,godot

Trains the city GAN's smoke config for one step (a real, if untrained,
generator: what is measured is the export path, not the model), then runs
``sample.py --export`` once per size in a fresh process and prints each
process's peak resident memory (``ru_maxrss``) and wall time, and the ratio
of the largest to the smallest.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--sizes", default="1025,4097")
  ap.add_argument("--formats", default="unity")
  a = ap.parse_args()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", PYTHONPATH=ROOT)
  tmp = tempfile.mkdtemp(prefix="genenv_export_mem_")
  work = os.path.join(tmp, "work")
  subprocess.run(
    [
      sys.executable,
      os.path.join(ROOT, "train.py"),
      "--config=" + os.path.join(ROOT, "configs/gan_city.py:smoke"),
      f"--workdir={work}",
      f"--config.data.data_dir={os.path.join(tmp, 'tfds')}",
      "--config.train.num_steps=1",
      "--config.train.feature_net=none",
    ],
    env=env,
    check=True,
    capture_output=True,
  )
  rows = []
  for n in [int(s) for s in a.sizes.split(",")]:
    out = os.path.join(tmp, f"out{n}")
    args = [f"--workdir={work}", f"--output={out}", f"--scene_size={n}x{n}", f"--export={a.formats}"]
    # The child reports its own peak RSS (RUSAGE_CHILDREN would also count the training process above).
    probe = (
      "import resource, runpy, sys\n"
      f"sys.argv = ['sample.py'] + {args!r}\n"
      "try:\n"
      f"  runpy.run_path({os.path.join(ROOT, 'sample.py')!r}, run_name='__main__')\n"
      "finally:\n"
      "  print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    t = time.time()
    r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    wall = time.time() - t
    if r.returncode:
      sys.exit(r.stderr[-2000:])
    kb = int([ln for ln in r.stderr.splitlines() if ln.startswith("MAXRSS_KB")][-1].split()[1])
    rows.append((n, kb / 1024, wall))
    print(f"{a.formats} export {n}x{n}: peak RSS {rows[-1][1]:.0f} MiB, {wall:.1f} s", flush=True)
  if len(rows) > 1:
    print(
      f"peak RSS ratio {rows[-1][0]}px / {rows[0][0]}px: {rows[-1][1] / rows[0][1]:.2f} "
      f"for {(rows[-1][0] / rows[0][0]) ** 2:.0f}x the pixels"
    )


if __name__ == "__main__":
  main()
