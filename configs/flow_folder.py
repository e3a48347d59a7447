r"""Glow flow on your own images: a folder of PNG/JPEG files (exact test bits/dim).

  python train.py --config=configs/flow_folder.py:cpu --config.data.path=~/my_images --workdir=runs/mine_flow
  python eval.py --workdir=runs/mine_flow --num_samples=1000

``data.path`` is required; the held-out split, classes and image handling
are those of ``configs/gan_folder.py``. Test bits/dim are measured on the
held-out images (``data.test_fraction`` of the folder, by path hash, or
``data.test_path``), beside an independent per-pixel baseline fitted to the
training images.

Measured with ``:cpu`` and 2000 steps on a 2-core CPU (4 min alone) on
the folder of 6000 forest PNGs written by ``tools/make_image_folder.py``:
test bits/dim 3.003 on the 594 held-out images (independent per-pixel
baseline 5.715); samples at temperature 0.7: FD 47.45 (real 0.09 /
untrained 92.04), precision 0.130, recall 0.144, C2ST pixels 1.00 (real
0.48). ``python tools/reproduce.py configs/flow_folder.py:cpu
--override=data.path=runs/forest_pngs --override=train.num_steps=2000
--name=flow_folder_forest_cpu`` writes ``results/flow_folder_forest_cpu.json``.
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
