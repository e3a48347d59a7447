r"""GAN on the built-in ``forest`` world: side-view landscapes with trees.

The same GAN as ``gan_city.py`` (all its variants and overrides), drawing RGB,
a one-hot label map (sky, hills, ground, trunk, foliage) and a depth map.

Commands:
  python train.py --config=configs/gan_forest.py:smoke --workdir=runs/forest_smoke
  python train.py --config=configs/gan_forest.py:cpu --workdir=runs/gan_forest_cpu
  python train.py --config=configs/gan_forest.py --workdir=runs/forest

Measured with ``:cpu`` on a 2-core CPU (3000 steps), ``python eval.py
--workdir=runs/gan_forest_cpu --num_samples=1000``: validity 0.573 (untrained
0.000, real held-out 1.000); statistics distance 0.449 (untrained 20.422,
real 0.119); C2ST on pixels 1.00 (real 0.48, 0.5 = indistinguishable).

Feature space (the shipped scene feature network), model (real held-out /
untrained): FD 39.09 (0.14 / 116.29); KID 1.884
(0.004 / 5.506); precision 0.011 (0.917); recall
0.054 (0.914). Its samples look blotchy to the feature network (94% "quantize").
With gan_city's ICNR-initialised upsamplings (this round; round 1: validity
0.708, FD 40.48, one run each).
All numbers: ``python tools/reproduce.py configs/gan_forest.py:cpu`` writes
``results/gan_forest_cpu.json`` (the results table, docs/results.md).
"""

from configs import gan_city


def get_config(arg=None):
  c = gan_city.get_config(arg)
  c.data.world = "forest"
  return c
