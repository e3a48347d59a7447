r"""Flow matching on the built-in ``terrain`` world: RGB + height, as ``flow_terrain``.

The same channels as the Glow config, so the two sit in one bits/dim column:
the flow-matching likelihood is the ODE's exact change of variables with a
Hutchinson trace (``fm.likelihood_steps`` midpoint steps).

Commands:
  python train.py --config=configs/fm_terrain.py:smoke --workdir=runs/fm_terrain_smoke
  python train.py --config=configs/fm_terrain.py:cpu --workdir=runs/fm_terrain_cpu
  python train.py --config=configs/fm_terrain.py --workdir=runs/fm_terrain

Not measured yet.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "terrain"
  c.data.channels = ("rgb", "height")
  return c
