r"""Writes a built-in world's RGB scenes as a folder of PNG files, one subfolder per scene class.

  python tools/make_image_folder.py --world=forest --num_images=3000 --image_size=64 --output=~/forest_pngs
  python tools/make_image_folder.py --world=terrain --layer=height --num_images=3000 --image_size=32 --output=~/dem_gray

The folder has the layout ``data.source='folder'`` reads (``configs/gan_folder.py``):
``OUTPUT/<class>/<world>_<seed>.png``. It is how the own-images guide's
(docs/own-data.md) example runs offline; any folder of your own images works the same.
"""

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
  "layer", "rgb", ["rgb", "height"], "What each PNG holds: the RGB rendering, or the height map as 8-bit gray (mode L)."
)


def main(argv):
  del argv
  world = get_world(_WORLD.value)
  out = os.path.expanduser(_OUT.value)
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


if __name__ == "__main__":
  app.run(main)
