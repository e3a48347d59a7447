r"""GAN on terrain regions: crops of the unbounded ``terrain_regions`` world (RGB, biomes, height).

  python train.py --config=configs/gan_terrain.py:cpu --workdir=runs/gan_terrain_cpu
  python eval.py --workdir=runs/gan_terrain_cpu --num_samples=1000
  python eval.py --workdir=runs/gan_terrain_cpu --scene_size=256x256 --num_samples=16
  python sample.py --workdir=runs/gan_terrain_cpu --output=out/terrain_unity --scene_size=2049x2049 --export=unity

Every training scene is a random 32-px region of one of 20 000 unbounded
landscapes (25 m per pixel), so the model learns terrain that continues past
its edges, and a large scene from its seamless canvas has a real counterpart:
a real region of the same size. The city GAN's architecture and ``:cpu``
budget (3000 steps of batch 32) with 10 channels.

Not measured yet: no ``:cpu`` run of this config has been made on this
project's machine (issue 13 stays open for it). ``python tools/reproduce.py
configs/gan_terrain.py:cpu`` makes its results row.
"""

from configs import gan_city
from genenv_jax import config_utils


def get_config(arg=None):
  variant = config_utils.parse_arg(arg)
  c = gan_city.get_config(",".join(sorted(variant)) or None)
  c.data.world = "terrain_regions"
  # data.conditional: condition on the region's class (lowland/hills/mountains)
  return c
