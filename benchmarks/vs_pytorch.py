r"""The project's train steps against PyTorch replicas of them, side by side in one run.

Three pairs (``--models``): ``gan`` = ``configs/gan_city.py:cpu`` against the
shared replica ``../shared/bench/torch_gan_city.py``; ``vae`` =
``configs/vae_terrain.py:cpu`` against ``benchmarks/torch_vae_terrain.py``;
``flow`` = ``configs/flow_terrain.py:cpu`` (Glow) against
``benchmarks/torch_flow_terrain.py``. Each replica has the same network,
losses, optimiser and EMA and prints its parameter count (equal to the
project's).

Alternates processes (project, then each PyTorch mode, for ``--rounds``
rounds) so drifts of a shared machine hit every contender alike, and prints
the median steps/s of each and its ratio to this project:

  python -m venv ~/torchenv && ~/torchenv/bin/pip install torch numpy
  python benchmarks/vs_pytorch.py --torch_python=~/torchenv/bin/python --rounds=3

With the default ``--variants`` (the CPU opt-ins) a round is 17 processes,
about 9 minutes on a 2-core CPU; ``--models`` and ``--variants=`` shorten it.

PyTorch is a benchmark-only dependency in its own environment: never in
requirements.txt, never imported by the library or the tests. A replica
prints ``RESULT {json}`` with ``steps_per_s``; the project side is
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
PAIRS = {
  "gan": ("configs/gan_city.py:cpu", os.path.join(ROOT, "..", "shared", "bench", "torch_gan_city.py")),
  "vae": ("configs/vae_terrain.py:cpu", os.path.join(ROOT, "benchmarks", "torch_vae_terrain.py")),
  "flow": ("configs/flow_terrain.py:cpu", os.path.join(ROOT, "benchmarks", "torch_flow_terrain.py")),
}


def result_of(cmd, env) -> dict:
  out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
  return json.loads(out.split("RESULT ", 1)[1].splitlines()[0])


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--torch_python", required=True, help="python of an environment with torch installed")
  p.add_argument("--models", default="gan,vae,flow", help=f"pairs to compare, from {sorted(PAIRS)}")
  p.add_argument(
    "--variants",
    default=";".join(
      [
        "gan:model.chunks=2",
        "gan:train.cpu_convolutions='eigen'",
        "gan:train.cpu_convolutions='eigen' model.chunks=2",
        "vae:vae.chunks=4",
        "vae:train.cpu_convolutions='eigen'",
        "vae:train.cpu_convolutions='eigen' vae.chunks=4",
        "flow:flow.conv1x1_as_dot=True",
        "flow:train.cpu_convolutions='eigen' flow.conv1x1_as_dot=True",
      ]
    ),
    help="extra project rows, MODEL:OVERRIDES[;MODEL:OVERRIDES] (space-separated config overrides of that pair's "
    "project step; default: the CPU opt-ins)",
  )
  p.add_argument("--modes", default="eager,cl", help="replica modes: eager, cl (channels_last), compile, compile_cl")
  p.add_argument("--steps", type=int, default=40)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
  a = p.parse_args()
  models = a.models.split(",")
  for m in models:
    if m not in PAIRS:
      raise SystemExit(f"--models={a.models!r}: {m!r} is not one of {sorted(PAIRS)}")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
  env["OMP_NUM_THREADS"] = str(a.threads)
  contenders = {}
  for m in models:
    config, replica = PAIRS[m]
    ours = [sys.executable, os.path.join(ROOT, "benchmarks", "train_throughput.py"), "--child", f"--config={config}"]
    contenders[(m, "this project")] = ours + [f"--steps={a.steps}"]
    for variant in filter(None, a.variants.split(";")):
      vm, _, override = variant.partition(":")
      if vm == m:
        contenders[(m, f"this project, {override}")] = ours + [f"--steps={a.steps}", *override.split()]
    for mode in a.modes.split(","):
      contenders[(m, f"pytorch {mode}")] = [
        os.path.expanduser(a.torch_python),
        replica,
        f"--mode={mode}",
        f"--steps={a.steps}",
        f"--threads={a.threads}",
      ]
  runs = {key: [] for key in contenders}
  for r in range(a.rounds):
    for key, cmd in contenders.items():
      runs[key].append(result_of(cmd, env)["steps_per_s"])
      print(f"round {r + 1}: {key[0]} {key[1]}: {runs[key][-1]:.2f} steps/s", flush=True)
  print(f"\n{a.rounds} interleaved rounds, {a.threads} threads, median steps/s:")
  print(f"{'':<62} {'steps/s':>8} {'vs this project':>16} {'project / it':>13}")
  for m in models:
    base = statistics.median(runs[(m, "this project")])
    print(PAIRS[m][0])
    for (mm, name), v in runs.items():
      if mm == m:
        med = statistics.median(v)
        print(f"  {name:<60} {med:>8.2f} {med / base:>16.2f} {base / med:>13.2f}")


if __name__ == "__main__":
  main()
