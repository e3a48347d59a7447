r"""How often a class-conditional props or characters model draws the kind it was asked for.

  python tools/class_recognition.py runs/fm_props_cpu --per_class=40
  python tools/class_recognition.py --model=fm_props
  python tools/class_recognition.py runs/fm_characters_cpu --per_class=40

Samples ``per_class`` sprites of every scene class (conditioned on it, seed
0xC1A55 + class) and judges each with the world's rules and with a
recogniser of its class:

* props: ``props.KindClassifier`` (nearest centroid of real props' part
  layouts, fitted on seeds away from the training data);
* characters: the figure's kind read from its parts
  (``CharactersWorld.kind_of``: person, quadruped, bird or robot), which
  must be the asked class's kind (``plain``, ``hat`` and ``staff`` are people).

It prints the share recognised per class and overall; real sprites' own
recognition rate is printed beside it (the recogniser's ceiling). Writes
``class_recognition.json`` into the workdir (or ``--output``).
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

  model = models.load(_MODEL.value) if _MODEL.value else trained.load(argv[1])
  world = model.world.name if model.world is not None else None
  if world not in RECOGNISERS or not model.spec.conditional:
    print(f"error: needs a class-conditional model of the {' or '.join(RECOGNISERS)} world", file=sys.stderr)
    return 1
  names, hits, real_rate = RECOGNISERS[world](model)
  n = _PER.value
  mesh = parallel.local_mesh()
  k = mesh.devices.size
  batch = -(-n // k) * k
  sample = jax.jit(model.family.sample, static_argnums=(2,))
  per_kind, valid = {}, []
  for c, name in enumerate(names):
    x = np.asarray(sample(model.params, jax.random.PRNGKey(0xC1A55 + c), batch, c))[:n]
    labels = model.layout.decode(x)["labels"]
    per_kind[name] = float(np.mean(hits(labels, c)))
    valid += [all(model.world.validity(lab).values()) for lab in labels]
  out = {
    "world": world,
    "recognised": float(np.mean(list(per_kind.values()))),
    "recognised_real": real_rate,
    "validity_conditioned": float(np.mean(valid)),
    "per_kind": per_kind,
    "per_class": n,
    "checkpoint_step": model.step,
  }
  dest = _OUTPUT.value or (argv[1] if len(argv) > 1 else ".")
  os.makedirs(dest, exist_ok=True)
  with open(os.path.join(dest, "class_recognition.json"), "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
  print(f"recognised {out['recognised']:.3f} (real {world} {out['recognised_real']:.3f}); "
        f"validity of conditioned samples {out['validity_conditioned']:.3f}")  # fmt: skip
  print("  " + ", ".join(f"{k} {v:.2f}" for k, v in per_kind.items()))
  return 0


def _props(model):
  """Names, ``hits(labels, c)`` (bool per sample) and the real props' recognition rate."""
  import numpy as np

  from genenv_jax.scenes import props

  clf = props.KindClassifier()
  real = np.stack([model.world.generate_class(5 * 10**9 + i, model.spec.image_size, c).labels
                   for c in range(len(props.KINDS)) for i in range(10)])  # fmt: skip
  rate = float((clf.predict(real) == np.repeat(np.arange(len(props.KINDS)), 10)).mean())
  return props.KINDS, lambda labels, c: clf.predict(labels) == c, rate


def _characters(model):
  """A sample of class c is recognised when its parts read as c's kind (plain, hat and staff are all people)."""
  import numpy as np

  from genenv_jax.scenes import characters

  w = model.world
  names = tuple(model.scene_classes or w.scene_class_names)
  kinds = [characters.KIND_OF_CLASS[n] for n in names]

  def hits(labels, c):
    return np.array([w.kind_of(lab) == kinds[c] for lab in labels])

  scenes = [w.generate(5 * 10**9 + i, model.spec.image_size) for i in range(120)]
  rate = float(np.mean([w.kind_of(s.labels) == kinds[s.scene_class] for s in scenes]))
  return names, hits, rate


RECOGNISERS = {"props": _props, "characters": _characters}


if __name__ == "__main__":
  app.run(main)
