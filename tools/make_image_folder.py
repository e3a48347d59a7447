r"""Writes a built-in world's RGB scenes as a folder of PNG files, one subfolder per scene class.

  python tools/make_image_folder.py --world=forest --num_images=3000 --image_size=64 --output=~/forest_pngs
  python tools/make_image_folder.py --world=terrain --layer=height --num_images=3000 --image_size=32 --output=~/dem_gray
  python tools/make_image_folder.py --world=terrain --layer=layers --num_images=3000 --output=~/terrain_layers

The folder has the layout ``data.source='folder'`` reads (``configs/gan_folder.py``):
``OUTPUT/<class>/<world>_<seed>.png``. It is how the own-images guide's
(docs/own-data.md) example runs offline; any folder of your own images works the same.

``--layer=layers`` writes sibling layers instead (``genenv_jax.data.layers``):
``OUTPUT/rgb/NAME.png``, ``OUTPUT/height/NAME.png`` (16-bit gray),
``OUTPUT/labels/NAME.png`` (palette PNG: the value is the class) and
``OUTPUT/classes.json`` (the world's class names and colours).
"""

import json
import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from PIL import Image  # noqa: E402

from genenv_jax.scenes import get_world  # noqa: E402

_WORLD = flags.DEFINE_string("world", "forest", "A built-in world: city, terrain, forest, characters.")
_NUM = flags.DEFINE_integer("num_images", 3000, "Images to write (seeds 0..n-1).")
_SIZE = flags.DEFINE_integer("image_size", 64, "Side in pixels (the world's own size rules apply).")
_OUT = flags.DEFINE_string("output", None, "Folder to write.", required=True)
_SEED = flags.DEFINE_integer("first_seed", 1_000_000, "First world seed (away from the built-in datasets' seeds).")
_LAYER = flags.DEFINE_enum(
  "layer",
  "rgb",
  ["rgb", "height", "layers"],
  "What each PNG holds: the RGB rendering, the height map as 8-bit gray (mode L), or all three as sibling layers.",
)


def main(argv):
  del argv
  world = get_world(_WORLD.value)
  out = os.path.expanduser(_OUT.value)
  if _LAYER.value == "layers":
    return write_layers(world, out)
  for name in world.scene_class_names:
    os.makedirs(os.path.join(out, name), exist_ok=True)
  for i in range(_NUM.value):
    seed = _SEED.value + i
    scene = world.generate(seed, _SIZE.value)
    path = os.path.join(out, world.scene_class_names[scene.scene_class], f"{_WORLD.value}_{seed}.png")
    if _LAYER.value == "height":
      Image.fromarray((scene.height * 255.0 + 0.5).astype("uint8"), "L").save(path)
    else:
      Image.fromarray(scene.rgb).save(path)
  print(f"wrote {_NUM.value} images into {out} ({', '.join(world.scene_class_names)})")
  return 0


def write_layers(world, out: str) -> int:
  import numpy as np

  for layer in ("rgb", "height", "labels"):
    os.makedirs(os.path.join(out, layer), exist_ok=True)
  classes = [{"name": n, "colour": [int(v) for v in c]} for n, c in zip(world.class_names, world.palette)]
  with open(os.path.join(out, "classes.json"), "w") as f:
    json.dump({"classes": classes}, f, indent=1)
  flat = [int(v) for c in world.palette for v in c]
  for i in range(_NUM.value):
    seed = _SEED.value + i
    scene = world.generate(seed, _SIZE.value)
    name = f"{_WORLD.value}_{seed}.png"
    Image.fromarray(scene.rgb).save(os.path.join(out, "rgb", name))
    Image.fromarray(np.round(scene.height * 65535.0).astype(np.uint16)).save(os.path.join(out, "height", name))
    lab = Image.fromarray(scene.labels.astype(np.uint8), "P")
    lab.putpalette(flat)
    lab.save(os.path.join(out, "labels", name))
  print(f"wrote {_NUM.value} scenes as rgb/, height/ (16-bit), labels/ (palette) and classes.json into {out}")
  return 0


if __name__ == "__main__":
  app.run(main)
