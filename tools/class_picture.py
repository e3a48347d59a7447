r"""A class-conditional sprite model's samples beside real sprites, one row per scene class.

  python tools/class_picture.py runs/fm_characters_cpu --output=docs/fm_characters_cpu_by_class.png

Each row: ``--per_class`` samples conditioned on the class (seed 0xC1A55 +
class, as ``eval.py``'s class grid), a gap, then as many real sprites of that
class (world seeds from 6e9 up, away from the training and test data), each
its RGB over its label map, and where the world has a renderer a third row:
the RGB the world draws from that label map (``eval.py --render=world``), at
``--scale`` x.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

_OUTPUT = flags.DEFINE_string("output", None, "The PNG to write.", required=True)
_PER = flags.DEFINE_integer("per_class", 6, "Sprites per class on each side.")
_SCALE = flags.DEFINE_integer("scale", 3, "Pixel repeat.")


def real_of_class(world, size: int, c: int, n: int):
  """``n`` real scenes of scene class ``c``: the world's own per-class draw where it has one, else the first
  seeds (from 6e9) that fall in the class."""
  if hasattr(world, "generate_class"):
    return [world.generate_class(6 * 10**9 + i, size, c) for i in range(n)]
  out, seed = [], 6 * 10**9
  while len(out) < n:
    sc = world.generate(seed, size)
    if sc.scene_class == c:
      out.append(sc)
    seed += 1
  return out


def main(argv):
  import jax
  import numpy as np

  from genenv_jax import logs, trained

  if len(argv) != 2:
    print("usage: python tools/class_picture.py WORKDIR --output=FILE.png", file=sys.stderr)
    return 1
  model = trained.load(argv[1])
  if not model.spec.conditional or model.world is None:
    print(f"error: {argv[1]}: needs a class-conditional model of a built-in world", file=sys.stderr)
    return 1
  n, s = _PER.value, _SCALE.value
  names = model.scene_classes or model.world.scene_class_names
  sample = jax.jit(model.family.sample, static_argnums=(2,))
  rows = []
  for c in range(len(names)):
    x = np.asarray(sample(model.params, jax.random.PRNGKey(0xC1A55 + c), n, c))
    d = model.layout.decode(x)
    w = model.world
    drawn = (lambda lab, i: [w.render(lab, None, seed=i)]) if hasattr(w, "render") else (lambda lab, i: [])
    gen = [np.concatenate([d["rgb"][i], w.palette[d["labels"][i]], *drawn(d["labels"][i], i)], 0) for i in range(n)]
    real = [np.concatenate([r.rgb, w.palette[r.labels], *drawn(r.labels, i)], 0)
            for i, r in enumerate(real_of_class(w, model.spec.image_size, c, n))]  # fmt: skip
    gap = np.full_like(gen[0][:, :4], 255)
    rows.append(np.concatenate([*gen, gap, *real], 1))
  tiles = np.stack(rows).repeat(s, 1).repeat(s, 2)
  logs.save_grid(_OUTPUT.value, tiles, cols=1, row_labels=names)
  print(f"wrote {_OUTPUT.value}: per class, {n} samples | {n} real")
  return 0


if __name__ == "__main__":
  app.run(main)
