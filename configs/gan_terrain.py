r"""GAN on the unbounded ``terrain_regions`` world: crops of one landscape per seed.

The same GAN as ``gan_city.py`` (all its variants and overrides), drawing RGB,
a one-hot biome map and a height map. Trained on training-size regions of
an unbounded world (25 m per pixel), so a tiled canvas continues one
landscape; ``eval.py --scene_size=256x256`` scores such canvases against
real regions of the same size.

Commands:
  python train.py --config=configs/gan_terrain.py:smoke --workdir=runs/gan_terrain_smoke
  python train.py --config=configs/gan_terrain.py:cpu --workdir=runs/gan_terrain_cpu
  python train.py --config=configs/gan_terrain.py --workdir=runs/gan_terrain

Measured with ``:cpu`` on a 2-core CPU (3000 steps of batch 32, 19 min wall
on a machine that ran ``gan_city``'s :cpu step at 2.9 steps/s that day, other
evaluations beside it), ``python eval.py --workdir=runs/gan_terrain_cpu
--num_samples=1000`` over 1000 scenes, judged by the region rules:

  ==========================  =========  =======  ====
  metric                      untrained  trained  real
  ==========================  =========  =======  ====
  validity (all rules)        0.000      0.001    1.000
  stats distance              2.687      0.448    0.065
  water below sea level       0.967      0.168    1.000
  snow only high              0.003      0.224    1.000
  biomes in height bands      0.000      0.001    1.000
  ==========================  =========  =======  ====

Feature space (the shipped scene feature network), model (real held-out /
untrained): FD 24.87 (0.15 / 115.40); KID 0.946 (-0.001 / 5.983); precision
0.347 (0.915); recall 0.317 (0.929); C2ST pixels 1.00 (real 0.47). The
look of terrain is learned before its physics: biomes do not yet follow
height (KID fell from 4.15 to 0.97 between steps 2000 and 3000, so the run
is far from converged). Large scenes (``eval.py --scene_size=256x256
--num_samples=16``): crop FD 12.46 (real 1.55), crop validity 0.5%; the
docs/large-scenes.md has the table and a 1024x1024 picture.
All numbers: ``python tools/reproduce.py configs/gan_terrain.py:cpu`` writes
``results/gan_terrain_cpu.json`` (the results table, docs/results.md).
"""

from configs import gan_city


def get_config(arg=None):
  c = gan_city.get_config(arg)
  c.data.world = "terrain_regions"
  return c
