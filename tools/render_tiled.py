r"""Draws an exported Tiled map (``.tmj`` and its tileset) as Tiled shows it, from the files alone.

  python sample.py --model=fm_dungeon --output=out/level --scene_size=65x65 --export=tiled --render=finished
  python tools/render_tiled.py out/level/tiled/scene.tmj --output=docs/fm_dungeon_tiled.png

Each cell is the tileset's tile of its GID (GID 0: empty, drawn dark), at
``--cell`` px, with the grid Tiled draws every cell; finite and infinite
(chunked) maps alike. What it reads is what an engine's Tiled importer reads,
so the picture checks the export, not the label map it was made from.
"""

import json
import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

_OUTPUT = flags.DEFINE_string("output", None, "The PNG to write.", required=True)
_CELL = flags.DEFINE_integer("cell", 8, "Pixels per map cell in the picture.")


def draw(tmj_path: str, cell: int):
  import numpy as np
  from PIL import Image

  from genenv_jax.exports import tiled

  with open(tmj_path) as f:
    tmj = json.load(f)
  ts = tmj["tilesets"][0]
  sheet = np.asarray(Image.open(os.path.join(os.path.dirname(tmj_path), ts["image"])).convert("RGB"))
  tw, th, cols = ts["tilewidth"], ts["tileheight"], ts["columns"]
  tiles = np.zeros((ts["tilecount"] + 1, cell, cell, 3), np.uint8)
  tiles[0] = 24  # GID 0: no tile
  for i in range(ts["tilecount"]):
    r, c = divmod(i, cols)
    tile = Image.fromarray(sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw]).resize((cell, cell), Image.NEAREST)
    tiles[ts["firstgid"] + i] = np.asarray(tile)
  gids = tiled.decode(tmj).astype(np.int64) + 1  # the map's GIDs, chunks assembled
  h, w = gids.shape
  img = tiles[gids].transpose(0, 2, 1, 3, 4).reshape(h * cell, w * cell, 3).copy()
  if cell >= 4:  # Tiled's grid
    img[::cell] = (img[::cell] * 0.6).astype(np.uint8)
    img[:, ::cell] = (img[:, ::cell] * 0.6).astype(np.uint8)
  return img, tmj


def main(argv):
  from PIL import Image

  if len(argv) != 2:
    print("usage: python tools/render_tiled.py MAP.tmj --output=FILE.png", file=sys.stderr)
    return 1
  try:
    img, tmj = draw(argv[1], _CELL.value)
  except (OSError, KeyError, ValueError, json.JSONDecodeError) as e:
    print(f"error: {argv[1]}: not a Tiled map written by the exporter ({e})", file=sys.stderr)
    return 1
  Image.fromarray(img).save(_OUTPUT.value)
  kind = "infinite (chunked)" if tmj["infinite"] else "finite"
  print(f"wrote {_OUTPUT.value}: a {tmj['width']}x{tmj['height']} {kind} map, {_CELL.value} px per cell")
  return 0


if __name__ == "__main__":
  app.run(main)
