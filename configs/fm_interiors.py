r"""Flow matching on the built-in ``interiors`` world: top-down floor plans of flats and small houses.

3 RGB channels, 18 one-hot label channels (garden, exterior and interior
walls, doors, windows, five room floors, eight kinds of furniture) and a
height channel (walls 3 m, window sills 1 m, furniture at its height), 0.5 m
per pixel. The label channels of the end point are snapped to one-hot, so the
plan rules (``genenv_jax.scenes.interiors``: walls close every room, every
room reachable from the front door, openings in walls, each room with its
defining furniture, furniture inside its room and out of doorways) judge the
samples.

Commands:
  python train.py --config=configs/fm_interiors.py:smoke --workdir=runs/fm_interiors_smoke
  python train.py --config=configs/fm_interiors.py:cpu --workdir=runs/fm_interiors_cpu
  python tools/reproduce.py configs/fm_interiors.py:cpu   # writes results/fm_interiors_cpu.json

The ``:cpu`` variant is ``fm_city``'s (same U-Net, 2000 steps of batch 32).
Measured: see ``results/fm_interiors_cpu.json`` and the table in
docs/levels-and-props.md (written from that file).
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "interiors"
  if c.data.image_size < 32:
    c.data.image_size = 32  # plans are drawn at 32 px and up (:smoke)
  return c
