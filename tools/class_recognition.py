r"""How often a class-conditional props model draws the kind it was asked for.

  python tools/class_recognition.py runs/fm_props_cpu --per_class=40
  python tools/class_recognition.py --model=fm_props

Samples ``per_class`` props of every kind (conditioned on it, seed 0xC1A55 +
kind), judges each with ``props.KindClassifier`` (nearest centroid of real
props' part layouts, fitted on seeds away from the training data) and with
the props rules, and prints the share recognised per kind and overall; the
real props' own recognition rate is printed beside it (the classifier's
ceiling). Writes ``class_recognition.json`` into the workdir (or ``--output``).
"""

import json
import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

_PER = flags.DEFINE_integer("per_class", 40, "Samples per kind.")
_MODEL = flags.DEFINE_string("model", None, "A shipped model instead of a workdir.")
_OUTPUT = flags.DEFINE_string("output", None, "Where class_recognition.json goes (default: the workdir).")


def main(argv):
  import jax
  import numpy as np

  from genenv_jax import models, parallel, trained
  from genenv_jax.scenes import props

  model = models.load(_MODEL.value) if _MODEL.value else trained.load(argv[1])
  if model.world is None or model.world.name != "props" or not model.spec.conditional:
    print("error: needs a class-conditional model of the props world", file=sys.stderr)
    return 1
  clf = props.KindClassifier()
  n = _PER.value
  mesh = parallel.local_mesh()
  k = mesh.devices.size
  batch = -(-n // k) * k
  sample = jax.jit(model.family.sample, static_argnums=(2,))
  per_kind, valid = {}, []
  for c, name in enumerate(props.KINDS):
    x = np.asarray(sample(model.params, jax.random.PRNGKey(0xC1A55 + c), batch, c))[:n]
    labels = model.layout.decode(x)["labels"]
    per_kind[name] = float((clf.predict(labels) == c).mean())
    valid += [all(model.world.validity(lab).values()) for lab in labels]
  real = np.stack([model.world.generate_class(5 * 10**9 + i, model.spec.image_size, c).labels
                   for c in range(len(props.KINDS)) for i in range(10)])  # fmt: skip
  truth = np.repeat(np.arange(len(props.KINDS)), 10)
  out = {
    "recognised": float(np.mean(list(per_kind.values()))),
    "recognised_real": float((clf.predict(real) == truth).mean()),
    "validity_conditioned": float(np.mean(valid)),
    "per_kind": per_kind,
    "per_class": n,
    "checkpoint_step": model.step,
  }
  dest = _OUTPUT.value or (argv[1] if len(argv) > 1 else ".")
  os.makedirs(dest, exist_ok=True)
  with open(os.path.join(dest, "class_recognition.json"), "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
  print(f"recognised {out['recognised']:.3f} (real props {out['recognised_real']:.3f}); "
        f"validity of conditioned samples {out['validity_conditioned']:.3f}")  # fmt: skip
  print("  " + ", ".join(f"{k} {v:.2f}" for k, v in per_kind.items()))
  return 0


if __name__ == "__main__":
  app.run(main)
