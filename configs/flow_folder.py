r"""Glow flow on your own images: a folder of PNG/JPEG files (exact test bits/dim).

  python train.py --config=configs/flow_folder.py:cpu --config.data.path=~/my_images --workdir=runs/mine_flow
  python eval.py --workdir=runs/mine_flow --num_samples=1000

``data.path`` is required; the held-out split, classes and image handling
are those of ``configs/gan_folder.py``. Test bits/dim are measured on the
held-out images (``data.test_fraction`` of the folder, by path hash, or
``data.test_path``), beside an independent per-pixel baseline fitted to the
training images.

Not measured on this project's machine yet (the 2-core CPU time of this
round went to the GAN rows); ``python tools/reproduce.py
configs/flow_folder.py:cpu --override=data.path=DIR --name=NAME`` makes its
results row. The smoke variant is exercised by tests/test_folder.py.
"""

from configs import flow_terrain
from genenv_jax import config_utils


def get_config(arg=None):
  variant = config_utils.parse_arg(arg)
  c = flow_terrain.get_config(",".join(sorted(variant)) or None)
  c.data.source = "folder"
  c.data.world = ""
  c.data.channels = ("rgb",)
  c.data.path = ""  # required: --config.data.path=DIR
  return c
