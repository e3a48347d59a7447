r"""Ships a trained workdir as a pretrained model of the package (EMA weights and a card).

  python tools/ship_model.py runs/fm_dungeon_cpu --name=fm_dungeon --results=results/fm_dungeon_cpu.json

writes ``genenv_jax/models/weights/fm_dungeon.npz`` and ``.json`` (see ``genenv_jax.models``).
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

from genenv_jax import models  # noqa: E402

_NAME = flags.DEFINE_string("name", None, "The model's name (sample.py --model=NAME).", required=True)
_RESULTS = flags.DEFINE_string("results", None, "Its results row (results/*.json), copied into the card.")


def main(argv):
  if len(argv) != 2:
    print("usage: python tools/ship_model.py WORKDIR --name=NAME [--results=results/X.json]", file=sys.stderr)
    return 2
  c = models.ship(argv[1], _NAME.value, _RESULTS.value)
  print(f"wrote {c['weights']} ({c['num_params']:,} params, sha256 {c['sha256'][:12]}...) and {_NAME.value}.json")
  print(models.describe(_NAME.value))
  return 0


if __name__ == "__main__":
  app.run(main)
