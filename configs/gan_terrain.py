r"""GAN on the unbounded ``terrain_regions`` world: crops of one landscape per seed.

The same GAN as ``gan_city.py`` (all its variants and overrides), drawing RGB,
a one-hot biome map and a height map. Trained on training-size regions of
an unbounded world (25 m per pixel), so a tiled canvas continues one
landscape; ``eval.py --scene_size=256x256`` scores such canvases against
real regions of the same size.

Commands:
  python train.py --config=configs/gan_terrain.py:smoke --workdir=runs/gan_terrain_smoke
  python train.py --config=configs/gan_terrain.py:cpu --workdir=runs/gan_terrain_cpu
  python train.py --config=configs/gan_terrain.py --workdir=runs/gan_terrain

Not measured yet.
"""

from configs import gan_city


def get_config(arg=None):
  c = gan_city.get_config(arg)
  c.data.world = "terrain_regions"
  return c
