r"""Ships a trained workdir as a pretrained model of the package (EMA weights and a card).

  python tools/ship_model.py runs/fm_dungeon_cpu --name=fm_dungeon --results=results/fm_dungeon_cpu.json

writes ``genenv_jax/models/weights/fm_dungeon.npz`` and ``.json`` (see ``genenv_jax.models``).

Another parameter file of a shipped model's network (``--base``, ``--weights``; ``models.ship_weights``), with
sampling keys set (``--set=KEY=VALUE``, a JSON value) and the commands that made the file (``--command``):

  python tools/ship_model.py --base=fm_city_hier3 --weights=runs/fm_city_hier3_field05.npz \
    --name=fm_city_hier3_field --set=hier.fine_temperature=0.6 --command="python tools/coarse_field.py ..." \
    --results=results/large_scenes.json --results_command="python tools/large_scenes.py ..."
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

from genenv_jax import models  # noqa: E402

_NAME = flags.DEFINE_string("name", None, "The model's name (sample.py --model=NAME).", required=True)
_RESULTS = flags.DEFINE_string("results", None, "Its results row (results/*.json), copied into the card.")
_BASE = flags.DEFINE_string("base", None, "A shipped model whose network --weights fits (instead of a WORKDIR).")
_WEIGHTS = flags.DEFINE_string("weights", None, "With --base: the parameter file (.npz) shipped.")
_SET = flags.DEFINE_multi_string("set", [], "With --base: KEY=VALUE (JSON) set in the card's config.")
_COMMAND = flags.DEFINE_string("command", None, "With --base: the commands that made --weights.")
_RESULTS_COMMAND = flags.DEFINE_string(
  "results_command", None, "With --base and --results=results/large_scenes.json: the command of its rows."
)


def main(argv):
  if _BASE.value:
    import json

    if len(argv) != 1 or not _WEIGHTS.value or not _COMMAND.value:
      print("usage: python tools/ship_model.py --base=NAME --weights=FILE --name=NAME --command=CMD", file=sys.stderr)
      return 2
    try:
      settings = {k: json.loads(v) for k, _, v in (a.partition("=") for a in _SET.value)}
    except json.JSONDecodeError as e:
      print(f"error: --set: KEY=VALUE with a JSON value ({e})", file=sys.stderr)
      return 2
    c = models.ship_weights(
      _BASE.value, _WEIGHTS.value, _NAME.value, _COMMAND.value, settings, _RESULTS.value, _RESULTS_COMMAND.value
    )
    print(f"wrote {c['weights']} (sha256 {c['sha256'][:12]}...) and {_NAME.value}.json from {_BASE.value}'s card")
    print(models.describe(_NAME.value))
    return 0
  if len(argv) != 2:
    print("usage: python tools/ship_model.py WORKDIR --name=NAME [--results=results/X.json]", file=sys.stderr)
    return 2
  c = models.ship(argv[1], _NAME.value, _RESULTS.value)
  print(f"wrote {c['weights']} ({c['num_params']:,} params, sha256 {c['sha256'][:12]}...) and {_NAME.value}.json")
  print(models.describe(_NAME.value))
  return 0


if __name__ == "__main__":
  app.run(main)
