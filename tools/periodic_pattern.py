r"""Measures the 8-px periodic column pattern of a trained model's large scenes.

  python tools/periodic_pattern.py --workdir=runs/gan_city_cpu --scene_size=256 --num_scenes=4

Renders square regions of the seamless canvas (seeds 0..n-1) and prints the
mean column-to-column RGB change (0-255 units) for each x mod 8, its spread
((max - min) / mean), and the same for real world scenes of the same size
as the reference.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from genenv_jax import cli, tiling, trained  # noqa: E402
from genenv_jax.metrics import periodicity  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir.", required=True)
_SIZE = flags.DEFINE_integer("scene_size", 256, "Side of each square region in pixels.")
_NUM = flags.DEFINE_integer("num_scenes", 4, "Regions (seeds 0..n-1).")
_PERIOD = flags.DEFINE_integer("period", 8, "Phase period in pixels.")


def report(name, profile):
  cells = " ".join(f"{v:5.1f}" for v in profile)
  print(f"{name:>10}: change by x mod {len(profile)}: {cells}   spread {periodicity.spread(profile):.3f}")


def main(argv):
  del argv
  cli.start()
  model = trained.load(_WORKDIR.value)
  px = model.family.tiling.cell_px
  cells = _SIZE.value // px
  rgb = []
  for seed in range(_NUM.value):
    x = tiling.render_region(model, seed, 0, 0, cells, cells, 1.0)
    rgb.append(model.layout.decode(x[None])["rgb"][0])
  report("model", periodicity.column_change_by_phase(np.stack(rgb), _PERIOD.value))
  if model.world is not None:
    real = np.stack([model.world.generate(s, _SIZE.value).rgb for s in range(_NUM.value)])
    report("real", periodicity.column_change_by_phase(real, _PERIOD.value))


if __name__ == "__main__":
  app.run(main)
