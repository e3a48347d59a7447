r"""The gan_city ``:cpu`` train step against its PyTorch replica, side by side in one run.

Alternates processes (project, then each PyTorch mode, for ``--rounds``
rounds) so drifts of a shared machine hit every contender alike, and prints
the median steps/s of each and its ratio to this project:

  python -m venv ~/torchenv && ~/torchenv/bin/pip install torch numpy
  python benchmarks/vs_pytorch.py --torch_python=~/torchenv/bin/python \
      --replica=../shared/bench/torch_gan_city.py --rounds=3

PyTorch is a benchmark-only dependency in its own environment: never in
requirements.txt, never imported by the library or the tests. The replica
(same network, losses, R1, optimiser and EMA, equal parameter counts) prints
``RESULT {json}`` with ``steps_per_s``; the project side is
``benchmarks/train_throughput.py``'s child on one device with the same
thread count.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def result_of(cmd, env) -> dict:
  out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
  return json.loads(out.split("RESULT ", 1)[1].splitlines()[0])


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--torch_python", required=True, help="python of an environment with torch installed")
  p.add_argument("--replica", default=os.path.join(ROOT, "..", "shared", "bench", "torch_gan_city.py"))
  p.add_argument("--modes", default="eager,cl", help="replica modes: eager, cl (channels_last), compile, compile_cl")
  p.add_argument("--config", default="configs/gan_city.py:cpu")
  p.add_argument("--steps", type=int, default=40)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
  a = p.parse_args()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
  env["OMP_NUM_THREADS"] = str(a.threads)
  ours = [sys.executable, os.path.join(ROOT, "benchmarks", "train_throughput.py"), "--child", f"--config={a.config}"]
  ours.append(f"--steps={a.steps}")
  contenders = {"this project": ours}
  for mode in a.modes.split(","):
    contenders[f"pytorch {mode}"] = [
      os.path.expanduser(a.torch_python),
      os.path.expanduser(a.replica),
      f"--mode={mode}",
      f"--steps={a.steps}",
      f"--threads={a.threads}",
    ]
  runs = {name: [] for name in contenders}
  for r in range(a.rounds):
    for name, cmd in contenders.items():
      runs[name].append(result_of(cmd, env)["steps_per_s"])
      print(f"round {r + 1}: {name}: {runs[name][-1]:.2f} steps/s", flush=True)
  base = statistics.median(runs["this project"])
  print(f"\n{a.config}, {a.rounds} interleaved rounds, {a.threads} threads, median steps/s:")
  print(f"{'':<22} {'steps/s':>8} {'vs this project':>16} {'project / it':>13}")
  for name, v in runs.items():
    m = statistics.median(v)
    print(f"{name:<22} {m:>8.2f} {m / base:>16.2f} {base / m:>13.2f}")


if __name__ == "__main__":
  main()
