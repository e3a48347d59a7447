r"""VAE on the built-in ``characters`` world: game-character sprites (RGB + part labels).

Commands:
  python train.py --config=configs/vae_characters.py:smoke --workdir=runs/vae_characters_smoke
  python train.py --config=configs/vae_characters.py:cpu --workdir=runs/vae_characters_cpu
  python train.py --config=configs/vae_characters.py --workdir=runs/vae_characters

Measured: see README "Results" once a ``:cpu`` run is recorded.
"""

import importlib.util
import os


def get_config(arg=None):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vae_terrain.py")
  spec = importlib.util.spec_from_file_location("_vae_terrain_config", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config(arg)
  c.data.world = "characters"
  c.data.channels = ("rgb", "labels")  # sprites have no height map
  return c
