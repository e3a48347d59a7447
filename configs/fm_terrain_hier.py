r"""Two-level flow matching on the unbounded ``terrain_regions`` world: a coarse relief, then the ground under it.

As ``fm_city_hier``: the coarse level learns 256-px regions averaged down by
8 (mean colour and height, biome shares), the fine level each 32-px window
under its coarse map. Unlike the single-level ``fm_terrain`` (RGB + height,
trained on the bounded ``terrain`` world) this model also carries the biome
labels, so a sketch can paint lakes and mountains in the terrain palette, and
it trains on the unbounded world it is judged on.

Commands:
  python train.py --config=configs/fm_terrain_hier.py:smoke --workdir=runs/fm_terrain_hier_smoke
  python tools/reproduce.py configs/fm_terrain_hier.py:cpu
  python tools/large_scenes.py --workdir=runs/fm_terrain_hier_cpu --scene_size=256x256 --num_samples=6

Measured: see the README's large-scene table (``results/large_scenes.json``)
and ``results/fm_terrain_hier_cpu.json``.
"""

from configs import fm_city_hier


def get_config(arg=None):
  c = fm_city_hier.get_config(arg)
  c.data.world = "terrain_regions"
  c.data.channels = ("rgb", "labels", "height")
  if c.hier.factor == 8:  # :cpu; terrain regions draw 4x faster than city ones
    c.hier.coarse_num_train = 8_000
  return c
