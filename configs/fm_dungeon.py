r"""Flow matching on the built-in ``dungeon`` world: roguelike levels of rooms, corridors and doors.

3 RGB channels, 7 one-hot label channels (rock, floor, corridor,
door, water, entrance, exit) and a height channel (walls 3 m, water 0). The
label channels of the end point are snapped to one-hot, so the level rules
(``genenv_jax.scenes.levels``: everything walkable connected, an
entrance-to-exit path, corridors 2 px wide, no door into rock, at least two
rooms) judge the samples.

Commands:
  python train.py --config=configs/fm_dungeon.py:smoke --workdir=runs/fm_dungeon_smoke
  python train.py --config=configs/fm_dungeon.py:cpu --workdir=runs/fm_dungeon_cpu
  python tools/reproduce.py configs/fm_dungeon.py:cpu   # writes results/fm_dungeon_cpu.json

The ``:cpu`` variant is ``fm_city``'s (same U-Net, 2000 steps of batch 32).
MEASURED: see below.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "dungeon"
  if c.data.image_size < 32:
    c.data.image_size = 32  # the level worlds draw 32 px and up (:smoke)
  return c
