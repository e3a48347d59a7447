r"""Scores whole large scenes of a model and writes its rows into ``results/large_scenes.json``.

  python tools/large_scenes.py --model=fm_city_regions --scene_size=256x256 --num_samples=6
  python tools/large_scenes.py --workdir=runs/fm_terrain_cpu --scene_size=1024x1024 --num_samples=8
  python tools/large_scenes.py --model=fm_terrain --scene_size=1024x1024 --num_samples=5
  python tools/large_scenes.py --model=fm_city_hier3 --weights=runs/fm_city_hier3_up3k.npz --num_samples=5

Runs ``large_eval.evaluate`` (what ``eval.py --scene_size`` runs) and stores
three rows per call, one per set: the model, the untrained model (the floor)
and real regions of the same size (against further real regions: the
real-vs-real spread). Each row holds ``config``, ``world``, ``scene_size``
(``"HxW"``), ``set``, ``num_scenes``, the whole-scene figures (``coarse_fd``,
``coarse_kid``, ``coarse_c2st`` and the large structures ``ms/...``), the crop
figures and the command that made it. A rerun of the same (config, world,
size) replaces its rows. ``python tools/results_table.py`` writes the table of
``docs/large-scenes.md`` from the file.

A flow-matching scene of 1024x1024 takes about 10 minutes on a 2-core CPU:
each scene drawn is kept in ``--cache_dir`` (keyed by a hash of the weights)
as soon as it is finished, so an interrupted run started again resumes with
the next scene. The untrained floor costs nothing there: an untrained
flow-matching network's velocity is zero, so its scenes are the starting
noise (``canvas.still_scene``, checked by ``canvas.zero_velocity``).
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
_FINE_TEMP = flags.DEFINE_float(
  "fine_temperature",
  None,
  "Hierarchical models: sample the fine level at this noise scale (sample.py --fine_temperature); the rows are "
  "kept apart from the model's own.",
)
_UPPER_TEMP = flags.DEFINE_float(
  "upper_temperature",
  None,
  "Hierarchical models: sample the coarse and top levels at this noise scale (sample.py --upper_temperature); "
  "the rows are kept apart from the model's own.",
)
_TOP_TEMP = flags.DEFINE_float(
  "top_temperature",
  None,
  "Three-level models: sample the top level at this noise scale (sample.py --top_temperature); rows kept apart.",
)
_MIN_WATER = flags.DEFINE_integer(
  "min_water_blocks",
  None,
  "Hierarchical models: prune coarse water pieces of fewer blocks (sample.py --min_water_blocks); rows kept apart.",
)
_CACHE = flags.DEFINE_string(
  "cache_dir", os.path.join(ROOT, "runs", "large_scenes_cache"), "Drawn scenes kept here ('' keeps none)."
)
_WEIGHTS = flags.DEFINE_string(
  "weights", "", "With --model: its parameters from this .npz instead (tools/coarse_more_steps.py); rows kept apart."
)


def main(argv):
  del argv
  from genenv_jax import large_eval, models, tiling, workdir

  if bool(_WORKDIR.value) == bool(_MODEL.value):
    print("error: give --workdir=W or --model=NAME", file=sys.stderr)
    return 2
  try:
    h, w = tiling.parse_size(_SIZE.value)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if _WEIGHTS.value and not _MODEL.value:
    print("error: --weights is for --model=NAME (a shipped model's parameters replaced)", file=sys.stderr)
    return 2
  if _MODEL.value:
    try:
      model = models.load(_MODEL.value, weights=_WEIGHTS.value or None)
    except (OSError, ValueError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    config = models.card(_MODEL.value)["train_command"]
    if _WEIGHTS.value:
      config = f"{config} (parameters from {_WEIGHTS.value})"
  else:
    from genenv_jax import trained

    model = trained.load(_WORKDIR.value)
    config = f"workdir {_WORKDIR.value}"
    for name in sorted(os.listdir(os.path.join(ROOT, "results"))):  # the results row that trained this workdir
      if name.endswith(".json") and name != "large_scenes.json":
        r = workdir.read_json(os.path.join(ROOT, "results", name))
        if isinstance(r, dict) and os.path.normpath(str(r.get("workdir", ""))) == os.path.normpath(_WORKDIR.value):
          config = r.get("command", config)
  ft = ""
  temps = (("fine_temperature", _FINE_TEMP.value), ("upper_temperature", _UPPER_TEMP.value))
  temps += (("top_temperature", _TOP_TEMP.value), ("min_water_blocks", _MIN_WATER.value))
  if any(t is not None for _, t in temps):
    from genenv_jax import trained

    try:
      model = trained.with_sampler(model, **dict(temps))
    except ValueError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    for name, t in temps:
      if t is not None and t != 1.0:  # at 1 the scenes, cache and row are the default's
        ft += f" --{name}={t:g}"
    if ft:
      config = f"{config} (sampled with{ft})"
  # Keyed by the weights themselves: a workdir retrained in place (same path, same step) gets a new directory.
  cache = os.path.join(_CACHE.value, large_eval.cache_key(model)) if _CACHE.value else None
  scores = large_eval.evaluate(_WORKDIR.value or _MODEL.value, h, w, _NUM.value, model=model, cache_dir=cache)
  src = f"--model={_MODEL.value}" if _MODEL.value else f"--workdir={_WORKDIR.value}"
  src += f" --weights={_WEIGHTS.value}" if _WEIGHTS.value else ""
  command = f"python tools/large_scenes.py {src} --scene_size={h}x{w} --num_samples={_NUM.value}{ft}"
  rows = large_eval.merge_rows(_OUT.value, large_eval.result_rows(scores, config, command))
  print(f"wrote {_OUT.value}: {len(rows)} rows")
  for r in rows[-3:]:
    print(f"  {r['set']:9s} coarse_fd {r['coarse_fd']}  validity {r['validity']}  crop_validity {r['crop_validity']}")
  return 0


if __name__ == "__main__":
  app.run(main)
