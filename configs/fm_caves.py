r"""Flow matching on the built-in ``caves`` world: cellular-automata caverns.

3 RGB channels, 7 one-hot label channels (rock, floor, corridor,
door, water, entrance, exit) and a height channel (walls 3 m, water 0). The
label channels of the end point are snapped to one-hot, so the level rules
(``genenv_jax.scenes.levels`` and ``caves``: everything walkable connected,
an entrance-to-exit path, smooth walls and 20-85% rock) judge the samples.

Commands:
  python train.py --config=configs/fm_caves.py:smoke --workdir=runs/fm_caves_smoke
  python train.py --config=configs/fm_caves.py:cpu --workdir=runs/fm_caves_cpu
  python tools/reproduce.py configs/fm_caves.py:cpu   # writes results/fm_caves_cpu.json

The ``:cpu`` variant is ``fm_city``'s (same U-Net, 2000 steps of batch 32).
MEASURED: see below.

Measured with ``:cpu`` (``fm_city``'s U-Net and budget, 2000 steps of batch
32; one run, about 1 step/s with the test suite beside it, Eigen
convolutions), ``python eval.py --workdir=runs/fm_caves_cpu --num_samples=1000``:
validity 0.021 (real 1.000, untrained 0.000). Cave shape passes 100%,
corridor and door rules 98-99% (caves have none to get wrong), walkable
connected 60.8%, and the 2x2 entrance and exit markers are almost never
drawn (entrance-to-exit 2.7%). C2ST pixels 1.000 (real 0.478). A finding, not
a result: its statistics distance (model 10978, untrained 8275881, real
0.345) is dominated by the corridor and door fractions, which are 0 in every
real cave, so their normalisation blows up; the caves' statistics should drop
them (next session). The feature network was not trained on levels: FD 54.64,
KID 3.167, precision 0.002, recall 0.002 (real 0.07 / -0.001 / 0.901 /
0.916) say little. All numbers: ``results/fm_caves_cpu.json``.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "caves"
  if c.data.image_size < 32:
    c.data.image_size = 32  # the level worlds draw 32 px and up (:smoke)
  return c
