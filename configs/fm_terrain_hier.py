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

Measured with ``:cpu`` (one run; 2000 steps of batch 32, 51 min on the
2-core CPU beside another run): 256x256 scenes (6 per set) coarse FD 5.5
(single-level ``fm_terrain`` 24.9, real 8.4), water log-area distance 0.43
(single 0.92, real 0.06), height spectrum distance 0.15 (single 0.37, real
0.07); single samples (``eval.py``, 1000 windows of ``terrain_regions``): FD
49.3 (noisy RGB), validity 0.000; a sketch at strength 0 is followed on
99.6% of the 8x8 blocks. Table and pictures: docs/large-scenes.md; rows:
``results/fm_terrain_hier_cpu.json``, ``results/large_scenes.json``.
"""

from configs import fm_city_hier


def get_config(arg=None):
  c = fm_city_hier.get_config(arg)
  c.data.world = "terrain_regions"
  c.data.channels = ("rgb", "labels", "height")
  if c.hier.factor == 8:  # :cpu; terrain regions draw 4x faster than city ones
    c.hier.coarse_num_train = 8_000
  return c
