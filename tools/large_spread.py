r"""How much the large-structure figures of ``results/large_scenes.json`` move with the scenes drawn.

  python tools/large_spread.py --model=fm_city_hier3 --model=fm_city_hier3 --fine_temperature=1,0.6 \
    --scene_size=1024x1024 --num_samples=5

A row of ``tools/large_scenes.py`` compares n whole scenes with n real
regions, pooled; with n = 5 one scene with a large lake moves the largest
body's share by a third. For each model (workdirs, then shipped models, each at
its ``--fine_temperature``) and for the real set, prints the committed figure
(``multiscale.compare`` against the same whole-scene reference as
``large_eval``) and its jackknife range (``multiscale.jackknife``: the n figures
that leave one scene out), for the water and road keys. Scenes come from
``tools/large_scenes.py``'s cache (``--cache_dir``, keyed by
``large_eval.cache_key``); one not there is drawn and kept there. ``--json``
writes the table. ``--weights`` (one ``.npz`` per ``--model``, '' for its own):
a shipped model's parameters replaced (``tools/coarse_more_steps.py``'s), as
``tools/large_scenes.py --weights``.

``--real_sets=K`` adds where real draws sit: K further sets of n real regions (``large_eval.real_sets``; set 0 is
the committed "real" row's), each scored against the same reference as a model's row, for the coarse appearance
(``coarse_fd``, ``coarse_kid``, ``coarse_c2st``) and the large structures; for each model the figure of its n scenes
and the share of real sets that sit at least as far from the reference. Five scenes a side make every figure
noisy: a model figure that real draws reach as often as not is not told apart from real by n scenes.

  python tools/large_spread.py --model=fm_terrain_hier --scene_size=1024x1024 --num_samples=5 --real_sets=40 \
    --json=results/spread/terrain_1024.json
"""

import json
import os
import sys

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from genenv_jax import cli, large_eval, parallel, tiling  # noqa: E402
from genenv_jax.metrics import multiscale, scene_metrics, scorer  # noqa: E402

_WORKDIR = flags.DEFINE_multi_string("workdir", [], "A train.py workdir (repeat for several models).")
_MODEL = flags.DEFINE_multi_string("model", [], "A shipped model (python -m genenv_jax.models; repeatable).")
_FT = flags.DEFINE_list("fine_temperature", [], "One fine-level temperature per model, in the models' order.")
_TT = flags.DEFINE_list(
  "top_temperature", [], "Three-level models: one top-level temperature per model (sample.py --top_temperature)."
)
_UT = flags.DEFINE_list(
  "upper_temperature", [], "Hierarchical models: one upper-level temperature per model (sample.py --upper_temperature)."
)
_MW = flags.DEFINE_list(
  "min_water_blocks", [], "Hierarchical models: one hier.min_water_blocks per model (sample.py --min_water_blocks)."
)
_WEIGHTS = flags.DEFINE_list(
  "weights", [], "One .npz per --model, in order ('' keeps its own parameters): tools/coarse_more_steps.py's."
)
_SIZE = flags.DEFINE_string("scene_size", "1024x1024", "HxW of the whole scenes (as tools/large_scenes.py).")
_NUM = flags.DEFINE_integer("num_samples", 5, "Scenes per set (as tools/large_scenes.py; 3 or more).")
_JSON = flags.DEFINE_string("json", "", "Write the table here.")
_CACHE = flags.DEFINE_string(
  "cache_dir", os.path.join(ROOT, "runs", "large_scenes_cache"), "tools/large_scenes.py's scenes ('' reads none)."
)
_REAL_SETS = flags.DEFINE_integer(
  "real_sets", 0, "Also score K sets of n real regions against the reference: the spread a model's row sits in."
)
_FNET = flags.DEFINE_string("feature_net", "default", "With --real_sets: the coarse FD/KID network (as eval.py).")
KEYS = ("largest_water_share", "water_log_areas_w1", "water_bodies_per_mpx", "road_largest_share")
SPREAD_KEYS = ("coarse_fd", "coarse_kid", "coarse_c2st", *(f"ms/{k}" for k in KEYS))


def spread_table(world, sets: dict, coarse: dict, n_sets: int, n: int, h: int, w: int, fnet, mesh) -> dict:
  """``--real_sets``: the real sets' figures (each key: the K values, min, median, max) and, for each set of
  scenes in ``sets`` (name -> decoded scenes), its figures against the same reference (``coarse``, from
  ``large_eval.coarse_reference`` with ``fnet``) and ``real_as_far``."""
  real = large_eval.real_sets(world, n_sets, n, h, w, coarse, fnet, mesh)
  keys = [key for key in SPREAD_KEYS if all(r.get(key) is not None for r in real)]
  out = {"real": {}}
  for key in keys:
    v = [float(r[key]) for r in real]
    out["real"][key] = {"values": v, "min": min(v), "median": float(np.median(v)), "max": max(v)}
  for name, scenes in sets.items():
    fig = large_eval.score_coarse(world, scenes, coarse, fnet, mesh)
    out[name] = {
      key: {"figure": float(fig[key]), "real_as_far": large_eval.real_as_far(fig[key], out["real"][key]["values"])}
      for key in keys
      if fig.get(key) is not None
    }
  return out


def main(argv):
  del argv
  cli.start()
  try:
    h, w = tiling.parse_size(_SIZE.value)
    ms = large_eval.load_models(
      _WORKDIR.value, _MODEL.value, _FT.value, _UT.value, _WEIGHTS.value, _TT.value, _MW.value
    )
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  n = _NUM.value
  if n < 3:
    print(f"error: num_samples={n}: need 3 or more to leave one out", file=sys.stderr)
    return 2
  n_sets = _REAL_SETS.value
  if n_sets < 0:
    print(f"error: real_sets={n_sets}: 0 (none) or more sets of real regions", file=sys.stderr)
    return 2
  world = large_eval.judge_world(ms[0].world)
  names = tuple(world.class_names)
  mesh = parallel.make_mesh(-1) if n_sets else None
  fnet = scorer.make_feature_net(_FNET.value, mesh) if n_sets else None
  coarse = large_eval.coarse_reference(world, n, h, w, fnet)  # the reference large_eval.evaluate reads against
  ref = coarse["stats"]
  sets = {"real": multiscale.evaluate(large_eval.real_regions(world, n, h, w, 0)["labels"], None, names)}
  drawn = {}
  weights = [""] * len(_WORKDIR.value) + (list(_WEIGHTS.value) or [""] * len(_MODEL.value))
  for m, src, wt in zip(ms, [*_WORKDIR.value, *_MODEL.value], weights):
    cache = os.path.join(_CACHE.value, large_eval.cache_key(m)) if _CACHE.value else None
    scenes = large_eval.model_regions(m, n, h, w, desc="model scenes", cache_dir=cache)
    labels, _ = scene_metrics.scene_maps(scenes, world)
    hr = (m.family.extras or {}).get("hier")
    t = getattr(hr, "fine_temperature", 1.0) if hr is not None else 1.0
    u = getattr(hr, "upper_temperature", 1.0) if hr is not None else 1.0
    v = getattr(hr, "top_temperature", 1.0) if hr is not None else 1.0
    how = ", ".join(f"{k} {x:g}" for k, x in (("fine", t), ("upper", u), ("top", v)) if x != 1.0)
    how = ", ".join(x for x in (f"weights {wt}" if wt else "", how) if x)
    name = f"{src} ({how})" if how else src
    sets[name] = multiscale.evaluate(labels, None, names)
    drawn[name] = scenes
  table = {}
  for name, stats in sets.items():
    full, jk = multiscale.compare(ref, stats), multiscale.jackknife(ref, stats)
    table[name] = {k: {"figure": full[k], "jackknife": jk[k]} for k in KEYS if k in full}
  keys = [k for k in KEYS if k in table["real"]]
  print(f"{n} scenes of {h}x{w} against {n} real regions; figure [leave-one-out min, max]")
  print(f"{'set':40s}" + "".join(f"{k:>30s}" for k in keys))
  for name, row in table.items():
    cells = (f"{row[k]['figure']:.3f} [{row[k]['jackknife'][0]:.3f}, {row[k]['jackknife'][1]:.3f}]" for k in keys)
    print(f"{name[:40]:40s}" + "".join(f"{c:>30s}" for c in cells))
  command = " ".join(["python", "tools/large_spread.py", *sys.argv[1:]])
  out = {"command": command, "scene_size": f"{h}x{w}", "num_samples": n, "sets": table}
  if n_sets:
    spread = spread_table(world, drawn, coarse, n_sets, n, h, w, fnet, mesh)
    skeys = list(spread["real"])
    seeds = f"seeds 0..{n_sets * n - 1}"
    print(f"\n{n_sets} sets of {n} real regions ({seeds}) against the same reference: median [min, max];")
    print("each model: its figure (the share of real sets at least as far)")
    print(f"{'set':40s}" + "".join(f"{key.removeprefix('ms/'):>26s}" for key in skeys))
    r = spread["real"]
    print(
      f"{'real sets':40s}" + "".join(f"{r[x]['median']:>9.3f} [{r[x]['min']:.3f}, {r[x]['max']:.3f}]" for x in skeys)
    )
    for name, row in spread.items():
      if name != "real":
        cells = (f"{row[x]['figure']:.3f} ({row[x]['real_as_far']:.2f})" if x in row else "-" for x in skeys)
        print(f"{name[:40]:40s}" + "".join(f"{c:>26s}" for c in cells))
    out["real_sets"] = {"count": n_sets, "seeds": f"0..{n_sets * n - 1}", **spread}
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(out, f, indent=1)
  return 0


if __name__ == "__main__":
  app.run(main)
