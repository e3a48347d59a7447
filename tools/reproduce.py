r"""One command per results row (docs/results.md): train a config, evaluate it, store the JSON.

  python tools/reproduce.py configs/gan_city.py:cpu
  python tools/reproduce.py configs/gan_folder.py:cpu --override=data.path=~/my_images --name=my_images

``--override=KEY=VALUE`` (repeatable) is passed to train.py as
``--config.KEY=VALUE``; with overrides the result is named by ``--name``
(default: the config's name and a hash of the overrides).

runs ``train.py`` (resuming if the workdir already holds the run), then
``eval.py``, and copies the evaluation to ``results/<config>_<variant>.json``
with the commands that made it. ``python tools/results_table.py`` then
rewrites the results table of ``docs/results.md`` from ``results/``.
"""

import hashlib
import json
import os
import subprocess
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

from genenv_jax import workdir as workdir_lib  # noqa: E402

_NUM = flags.DEFINE_integer("num_samples", 1000, "Scenes per set for eval.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Default: runs/<name>.")
_OVERRIDE = flags.DEFINE_multi_string("override", [], "KEY=VALUE config overrides, e.g. data.path=~/images.")
_NAME = flags.DEFINE_string("name", None, "Result name (results/<name>.json, runs/<name>); default from the config.")


def result_name(spec: str) -> str:
  path, _, variant = spec.partition(":")
  stem = os.path.splitext(os.path.basename(path))[0]
  return f"{stem}_{variant}" if variant else stem


def main(argv):
  if len(argv) != 2:
    print(
      "usage: python tools/reproduce.py configs/NAME.py[:variant] [--num_samples=N] [--override=KEY=VALUE ...]",
      file=sys.stderr,
    )
    return 2
  spec = argv[1]
  for item in _OVERRIDE.value:
    if "=" not in item:
      print(f"error: --override={item!r}: must be KEY=VALUE, e.g. data.path=~/images", file=sys.stderr)
      return 2
  name = _NAME.value or result_name(spec)
  if _OVERRIDE.value and not _NAME.value:
    name += "_" + hashlib.sha256("\n".join(_OVERRIDE.value).encode()).hexdigest()[:8]
  workdir = _WORKDIR.value or os.path.join("runs", name)
  overrides = list(_OVERRIDE.value)
  committed = os.path.join(ROOT, "results", f"{name}.json")
  if os.path.exists(committed) and not any(o.startswith("train.cpu_convolutions=") for o in overrides):
    # A committed row reproduces with the kernels it was measured with: rows from before the 'auto'
    # default (no key) ran XLA's default kernels. Delete the row to measure it anew with today's default.
    kernels = workdir_lib.read_json(committed).get("cpu_convolutions", "xla")
    overrides.append(f"train.cpu_convolutions={kernels}")  # a plain string: config flags take it as is
  train = [sys.executable, "train.py", f"--config={spec}", f"--workdir={workdir}"]
  train += [f"--config.{item}" for item in overrides]
  evaluate = [sys.executable, "eval.py", f"--workdir={workdir}", f"--num_samples={_NUM.value}"]
  for cmd in (train, evaluate):
    print("+", " ".join(cmd[1:]), flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode:
      return 1
  wd = workdir_lib.Workdir(os.path.join(ROOT, workdir))
  result = workdir_lib.read_json(wd.eval_results)
  config = wd.read_raw()["config"]
  result.update(
    config=spec,
    overrides=list(_OVERRIDE.value),
    family=config["family"],
    world=config["data"]["world"] if config["data"]["source"] == "world" else config["data"]["source"],
    data_path=config["data"].get("path") or None,
    image_size=config["data"]["image_size"],
    num_steps=config["train"]["num_steps"],
    cpu_convolutions=config["train"].get("cpu_convolutions", "xla"),
    command=" ".join(["python", "tools/reproduce.py", *sys.argv[1:]]),
    train_command=" ".join(["python", *train[1:]]),
    eval_command=" ".join(["python", *evaluate[1:]]),
  )
  os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
  out = os.path.join(ROOT, "results", f"{name}.json")
  with open(out, "w") as f:
    json.dump(result, f, indent=1, sort_keys=True)
  print(f"wrote {out}; now run: python tools/results_table.py")
  return 0


if __name__ == "__main__":
  app.run(main)
