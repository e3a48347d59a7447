r"""Retrains the shipped scene feature network (FD / KID / precision-recall features).

  python tools/train_feature_net.py                      # overwrites the shipped weights
  python tools/train_feature_net.py --out=/tmp/feat.npz  # somewhere else

Deterministic: the same arguments give the same weights on the same machine
and JAX version. About 10 minutes on 2 CPU cores.
"""

import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from genenv_jax.metrics import feature_training, features  # noqa: E402

_OUT = flags.DEFINE_string("out", features.DEFAULT_WEIGHTS, "Where to write the .npz (and its .json).")
_N = flags.DEFINE_integer("num_per_world", 5000, "Training scenes per world.")
_STEPS = flags.DEFINE_integer("steps", 3000, "Adam steps.")
_SEED = flags.DEFINE_integer("seed", 0, "Initialisation and batch-order seed.")
_SIZE = flags.DEFINE_integer("input_size", features.INPUT_SIZE, "Scene size the network reads (inputs are resized).")


def main(argv):
  del argv
  logging.getLogger().setLevel(logging.INFO)
  params, meta = feature_training.train(
    num_per_world=_N.value, steps=_STEPS.value, seed=_SEED.value, input_size=_SIZE.value
  )
  meta["command"] = " ".join(["python", "tools/train_feature_net.py", *sys.argv[1:]])
  features.save(_OUT.value, params, meta)
  print(json.dumps(meta["val"], indent=1))
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
