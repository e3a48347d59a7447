r"""Flow matching on the built-in ``terrain`` world: RGB + height, as ``flow_terrain``.

The same channels as the Glow config, so the two sit in one bits/dim column:
the flow-matching likelihood is the ODE's exact change of variables with a
Hutchinson trace (``fm.likelihood_steps`` midpoint steps).

Commands:
  python train.py --config=configs/fm_terrain.py:smoke --workdir=runs/fm_terrain_smoke
  python train.py --config=configs/fm_terrain.py:cpu --workdir=runs/fm_terrain_cpu
  python train.py --config=configs/fm_terrain.py --workdir=runs/fm_terrain

Measured with ``:cpu`` on a 2-core CPU (the ``fm_city`` settings: 2000 steps of
batch 32, ~10 min of training at 3.3 steps/s), ``python eval.py
--workdir=runs/fm_terrain_cpu --num_samples=1000`` (samples: midpoint rule,
16 steps; bits/dim: 32 midpoint steps back from the data, one Rademacher
probe per scene, over the whole 1000-scene test split):

  =============================  =========  =======  =====  ==================
  metric                         untrained  trained  real   flow_terrain :cpu
  =============================  =========  =======  =====  ==================
  test bits/dim (RGB + height)   8.50       3.993    -      3.975 (6000 steps)
  FD                             162.31     6.79     0.21   45.01
  KID                            9.083      0.253    0.003  1.784
  precision                      0.000      0.771    0.905  0.652
  recall                         0.000      0.748    0.916  0.213
  statistics distance            7.930      0.479    0.088  1.379
  =============================  =========  =======  =====  ==================

(C2ST on features 0.80, real 0.51, Glow 0.96; on pixels 1.00; independent
per-pixel baseline: 7.406 bits/dim; the untrained field is 0,
so its bits/dim is a standard normal's on the data, from the step-0
evaluation). Within 0.5% of Glow's likelihood in a third of its steps, and
far better samples. Validity is not a useful number without a label channel
(real scenes pass 1%: see ``flow_terrain.py``). All numbers: ``python
tools/reproduce.py configs/fm_terrain.py:cpu`` writes ``results/fm_terrain_cpu.json``.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "terrain"
  c.data.channels = ("rgb", "height")
  return c
