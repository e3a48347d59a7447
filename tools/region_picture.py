r"""A large generated scene beside a real region of the same size (the pictures of docs/large-scenes.md).

  python tools/region_picture.py --workdir=runs/gan_city_cpu --size=1024 --output=docs/city_1024_model_vs_real.png
  python tools/region_picture.py --workdir=runs/fm_city_hier_cpu --workdir=runs/fm_city_regions_cpu --size=1024 \
    --output=docs/city_1024_hier_vs_single_vs_real.png
  python tools/region_picture.py --model=fm_terrain --size=1024 --output=docs/terrain_1024_fm_vs_real.png
  python tools/region_picture.py --model=fm_city_hier3 --model=fm_city_hier3 --fine_temperature=1,0.6 --size=1024 \
    --output=docs/city_1024_hier3_fine_temperature.png
  python tools/region_picture.py --model=fm_city_hier3 --model=fm_city_hier3 --fine_temperature=0.6,0.6 \
    --weights=,runs/fm_city_hier3_up3k_top1200.npz --size=1024 --output=city_1024_hier3_up3k.png

Left: each model's seamless canvas, workdirs then shipped models (``--model``)
in the order given (seed 0, ``eval.py --scene_size`` and
``tools/large_scenes.py`` draw the same; a scene that ``tools/large_scenes.py``
kept in ``--cache_dir`` is read back, not drawn again, and one drawn here is
kept there); right: region (0, 0) of real world 0 of the unbounded version
of the first model's world. Downscaled by ``--scale`` (box filter) to keep
the PNG small.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from genenv_jax import cli, large_eval  # noqa: E402

_WORKDIR = flags.DEFINE_multi_string("workdir", [], "A train.py workdir (repeat for several models).")
_MODEL = flags.DEFINE_multi_string("model", [], "A shipped model (python -m genenv_jax.models; repeatable).")
_SIZE = flags.DEFINE_integer("size", 1024, "Side of the square scenes in pixels.")
_SCALE = flags.DEFINE_integer("scale", 2, "Downscale factor for the picture.")
_OUT = flags.DEFINE_string("output", None, "PNG to write.", required=True)
_FT = flags.DEFINE_list(
  "fine_temperature",
  [],
  "Hierarchical models: one fine-level temperature per model, in the models' order (sample.py --fine_temperature; "
  "1: as trained).",
)
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
  "weights",
  [],
  "One .npz per --model, in order ('' keeps its own parameters): tools/coarse_more_steps.py's continuations.",
)
_CACHE = flags.DEFINE_string(
  "cache_dir", os.path.join(ROOT, "runs", "large_scenes_cache"), "tools/large_scenes.py's scenes ('' reads none)."
)


def main(argv):
  del argv
  cli.start()
  try:
    ms = large_eval.load_models(
      _WORKDIR.value, _MODEL.value, _FT.value, _UT.value, _WEIGHTS.value, _TT.value, _MW.value
    )
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  world = large_eval.judge_world(ms[0].world)
  s = _SIZE.value

  def cache(m):  # tools/large_scenes.py's directory for these weights (and fine level's temperature)
    return os.path.join(_CACHE.value, large_eval.cache_key(m)) if _CACHE.value else None

  gens = [large_eval.model_regions(m, 1, s, s, desc="model scenes", cache_dir=cache(m))["rgb"][0] for m in ms]
  real = large_eval.real_regions(world, 1, s, s, 0)["rgb"][0]
  k = _SCALE.value
  small = [x.reshape(s // k, k, s // k, k, 3).mean((1, 3)).round().astype(np.uint8) for x in (*gens, real)]
  gap = np.full((s // k, 8, 3), 255, np.uint8)
  row = [p for x in small for p in (x, gap)][:-1]
  Image.fromarray(np.concatenate(row, 1)).save(_OUT.value, optimize=True)
  print(f"wrote {_OUT.value}")
  return 0


if __name__ == "__main__":
  app.run(main)
