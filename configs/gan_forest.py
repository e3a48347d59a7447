r"""GAN on the built-in ``forest`` world: side-view landscapes with trees.

The same GAN as ``gan_city.py`` (all its variants and overrides), drawing RGB,
a one-hot label map (sky, hills, ground, trunk, foliage) and a depth map.

Commands:
  python train.py --config=configs/gan_forest.py:smoke --workdir=runs/forest_smoke
  python train.py --config=configs/gan_forest.py:cpu --workdir=runs/gan_forest_cpu
  python train.py --config=configs/gan_forest.py --workdir=runs/forest

Measured with ``:cpu`` on a 2-core CPU (3000 steps), ``python eval.py
--workdir=runs/gan_forest_cpu --num_samples=1000``: validity 0.708 (untrained
0.000, real held-out 1.000); statistics distance 0.250 (untrained 16.627,
real 0.078).

Feature space (the shipped scene feature network), model (real held-out /
untrained): FD 40.48 (0.07 / 157.88); KID 1.943
(-0.000 / 8.142); precision 0.024 (0.905); recall
0.001 (0.919). Its samples look blotchy to the feature network (96% "quantize").
All numbers: ``python tools/reproduce.py configs/gan_forest.py:cpu`` writes
``results/gan_forest_cpu.json`` (the README's results table).
"""

from configs import gan_city


def get_config(arg=None):
  c = gan_city.get_config(arg)
  c.data.world = "forest"
  return c
