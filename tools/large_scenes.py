r"""Scores whole large scenes of a model and writes its rows into ``results/large_scenes.json``.

  python tools/large_scenes.py --model=fm_city_regions --scene_size=256x256 --num_samples=6
  python tools/large_scenes.py --workdir=runs/fm_terrain_cpu --scene_size=1024x1024 --num_samples=8

Runs ``large_eval.evaluate`` (what ``eval.py --scene_size`` runs) and stores
three rows per call, one per set: the model, the untrained model (the floor)
and real regions of the same size (against further real regions: the
real-vs-real spread). Each row holds ``config``, ``world``, ``scene_size``
(``"HxW"``), ``set``, ``num_scenes``, the whole-scene figures (``coarse_fd``,
``coarse_kid``, ``coarse_c2st`` and the large structures ``ms/...``), the crop
figures and the command that made it. A rerun of the same (config, world,
size) replaces its rows. ``python tools/results_table.py`` writes the table of
``docs/large-scenes.md`` from the file.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir (or give --model).")
_MODEL = flags.DEFINE_string("model", None, "A shipped model (python -m genenv_jax.models).")
_SIZE = flags.DEFINE_string("scene_size", "1024x1024", "HxW of the whole scenes.")
_NUM = flags.DEFINE_integer("num_samples", 8, "Scenes per set (coarse FD/KID/C2ST need at least 5).")
_OUT = flags.DEFINE_string("results", os.path.join(ROOT, "results", "large_scenes.json"), "The results file.")


def main(argv):
  del argv
  from genenv_jax import large_eval, models, workdir

  if bool(_WORKDIR.value) == bool(_MODEL.value):
    print("error: give --workdir=W or --model=NAME", file=sys.stderr)
    return 2
  h, w = (int(v) for v in _SIZE.value.lower().split("x"))
  model = models.load(_MODEL.value) if _MODEL.value else None
  if model is not None:
    config = models.card(_MODEL.value)["train_command"]
  else:
    config = f"workdir {_WORKDIR.value}"
    for name in sorted(os.listdir(os.path.join(ROOT, "results"))):  # the results row that trained this workdir
      if name.endswith(".json") and name != "large_scenes.json":
        r = workdir.read_json(os.path.join(ROOT, "results", name))
        if isinstance(r, dict) and os.path.normpath(str(r.get("workdir", ""))) == os.path.normpath(_WORKDIR.value):
          config = r.get("command", config)
  scores = large_eval.evaluate(_WORKDIR.value or _MODEL.value, h, w, _NUM.value, model=model)
  src = f"--model={_MODEL.value}" if _MODEL.value else f"--workdir={_WORKDIR.value}"
  command = f"python tools/large_scenes.py {src} --scene_size={h}x{w} --num_samples={_NUM.value}"
  rows = large_eval.merge_rows(_OUT.value, large_eval.result_rows(scores, config, command))
  print(f"wrote {_OUT.value}: {len(rows)} rows")
  for r in rows[-3:]:
    print(f"  {r['set']:9s} coarse_fd {r['coarse_fd']}  validity {r['validity']}  crop_validity {r['crop_validity']}")
  return 0


if __name__ == "__main__":
  app.run(main)
