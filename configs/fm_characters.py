r"""Flow matching on the built-in ``characters`` world: sprites with part labels.

Commands:
  python train.py --config=configs/fm_characters.py:smoke --workdir=runs/fm_characters_smoke
  python train.py --config=configs/fm_characters.py:cpu --workdir=runs/fm_characters_cpu
  python train.py --config=configs/fm_characters.py --workdir=runs/fm_characters

Not measured yet.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "characters"
  c.data.channels = ("rgb", "labels")  # sprites have no height map
  return c
