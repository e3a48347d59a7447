r"""A hand-drawn coarse map beside the scene a hierarchical model draws from it (docs/large-scenes.md).

  python tools/sketch_picture.py --workdir=runs/fm_city_hier_cpu --size=256 --strength=0 \
    --sketch=docs/sketch_city_32.png --output=docs/sketch_city_256.png

With ``--sketch`` naming a file that does not exist, a built-in sketch is
written there first (city: a river from top to bottom with a lake, buildings
on one bank, parks on the other; terrain: a lake in low grassland below a
rock and snow ridge), in the world's palette at 1/factor of ``--size``.
The picture: the sketch (scaled up), the scene's RGB and its label map.
It also prints the share of the scene's ``factor x factor`` blocks whose
majority class is the sketch's class there.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from genenv_jax import canvas, cli, sketch, trained  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A hierarchical model's train.py workdir.", required=True)
_SIZE = flags.DEFINE_integer("size", 256, "Side of the square scene in pixels.")
_SKETCH = flags.DEFINE_string("sketch", None, "The sketch PNG (written first when missing).", required=True)
_STRENGTH = flags.DEFINE_float("strength", 0.0, "--sketch_strength.")
_SEED = flags.DEFINE_integer("seed", 0, "Scene seed.")
_OUT = flags.DEFINE_string("output", None, "PNG to write.", required=True)


def builtin(world_name: str, names, palette, n: int) -> np.ndarray:
  cls = {c: i for i, c in enumerate(names)}
  yy, xx = np.mgrid[0:n, 0:n] / n
  if "road" in cls:  # the city
    idx = np.where(xx < 0.5, cls["building"], cls["park"])
    idx[(np.abs(xx - 0.5 - 0.08 * np.sin(6 * yy)) < 0.06)] = cls["water"]
    idx[(yy - 0.75) ** 2 + (xx - 0.3) ** 2 < 0.02] = cls["water"]
  else:  # terrain
    idx = np.full((n, n), cls["grass"])
    idx[yy < 0.3] = cls["rock"]
    idx[yy < 0.12] = cls["snow"]
    idx[(yy - 0.65) ** 2 + (xx - 0.5) ** 2 < 0.04] = cls["water"]
    ring = ((yy - 0.65) ** 2 + (xx - 0.5) ** 2 < 0.055) & (idx != cls["water"])
    idx[ring] = cls["beach"]
    idx[(xx > 0.75) & (yy > 0.3)] = cls["forest"]
  return np.asarray(palette)[idx].astype(np.uint8)


def main(argv):
  del argv
  cli.start()
  model = trained.load(_WORKDIR.value)
  hr = (model.family.extras or {}).get("hier")
  if hr is None:
    raise SystemExit(f"error: {_WORKDIR.value} is not a hierarchical model")
  s, f = _SIZE.value, hr.factor
  lay = model.layout
  if not os.path.exists(_SKETCH.value):
    img = builtin(model.world.name, lay.class_names, lay.palette, s // f)
    Image.fromarray(img).save(_SKETCH.value)
    print(f"wrote the built-in sketch {_SKETCH.value}")
  sk = sketch.load(_SKETCH.value, lay)
  x = canvas.render_scene(model, s, s, seed=_SEED.value, sketch=sk, sketch_strength=_STRENGTH.value)
  dec = lay.decode(x[None])
  want = sk.known[..., lay.slices()["labels"]].argmax(-1)
  k = len(lay.class_names)
  votes = np.stack([(dec["labels"][0] == c).reshape(s // f, f, s // f, f).sum((1, 3)) for c in range(k)], -1)
  agree = float((votes.argmax(-1) == want).mean())
  up = np.asarray(Image.open(_SKETCH.value).convert("RGB")).repeat(f, 0).repeat(f, 1)
  gap = np.full((s, 8, 3), 255, np.uint8)
  labels = np.asarray(lay.palette)[dec["labels"][0]]
  Image.fromarray(np.concatenate([up, gap, dec["rgb"][0], gap, labels], 1)).save(_OUT.value, optimize=True)
  print(f"wrote {_OUT.value}; {agree:.3f} of the {f}x{f} blocks have the sketch's class as their majority")
  return 0


if __name__ == "__main__":
  app.run(main)
