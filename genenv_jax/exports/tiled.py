"""Tiled maps (``.tmj``, Tiled's JSON map format) from label maps, one map cell per scene pixel.

The tileset is generated: one tile per class, filled with the world's
palette colour. GID = class + 1 (GID 0 means "empty" in Tiled), so the label
map comes back exactly as ``gid - 1``. Scenes larger than ``CHUNKED_ABOVE``
cells a side become infinite maps stored in 16x16 chunks, as Tiled itself
writes them.
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

TILE_PX = 16
CHUNK = 16
CHUNKED_ABOVE = 256
TILED_VERSION = "1.10"


def _tileset(scene, folder: str) -> dict:
  k = len(scene.class_names)
  img = np.zeros((TILE_PX, TILE_PX * k, 3), np.uint8)
  for c in range(k):
    img[:, c * TILE_PX : (c + 1) * TILE_PX] = scene.palette[c]
  Image.fromarray(img).save(os.path.join(folder, "tileset.png"))
  return {
    "firstgid": 1,
    "name": f"{scene.world or 'scene'}_classes",
    "image": "tileset.png",
    "imagewidth": TILE_PX * k,
    "imageheight": TILE_PX,
    "tilewidth": TILE_PX,
    "tileheight": TILE_PX,
    "tilecount": k,
    "columns": k,
    "margin": 0,
    "spacing": 0,
    "tiles": [
      {"id": c, "type": name, "properties": [{"name": "class", "type": "string", "value": name}]}
      for c, name in enumerate(scene.class_names)
    ],
  }


def write(scene, folder: str, name: str = "scene") -> list[str]:
  """Writes ``<name>.tmj`` and ``tileset.png`` into ``folder``."""
  if scene.labels is None:
    raise ValueError(f"tiled: the scene has no label map (world {scene.world!r}); Tiled maps are made from one")
  h, w = scene.shape
  infinite = max(h, w) > CHUNKED_ABOVE
  layer = {
    "type": "tilelayer",
    "id": 1,
    "name": "labels",
    "x": 0,
    "y": 0,
    "width": w,
    "height": h,
    "opacity": 1,
    "visible": True,
  }
  if infinite:
    chunks = []
    for y0 in range(0, h, CHUNK):
      for x0 in range(0, w, CHUNK):
        block = np.zeros((CHUNK, CHUNK), np.int64)
        part = np.asarray(scene.labels[y0 : y0 + CHUNK, x0 : x0 + CHUNK]).astype(np.int64) + 1
        block[: part.shape[0], : part.shape[1]] = part
        chunks.append({"x": x0, "y": y0, "width": CHUNK, "height": CHUNK, "data": block.ravel().tolist()})
    layer.update(chunks=chunks, startx=0, starty=0)
  else:
    layer["data"] = (np.asarray(scene.labels).astype(np.int64) + 1).ravel().tolist()
  tmap = {
    "type": "map",
    "version": TILED_VERSION,
    "tiledversion": "1.10.2",
    "orientation": "orthogonal",
    "renderorder": "right-down",
    "infinite": infinite,
    "width": w,
    "height": h,
    "tilewidth": TILE_PX,
    "tileheight": TILE_PX,
    "nextlayerid": 2,
    "nextobjectid": 1,
    "compressionlevel": -1,
    "properties": [
      {"name": "source", "type": "string", "value": scene.source},
      {"name": "metres_per_cell", "type": "float", "value": scene.metres_per_pixel},
      {"name": "gid_to_class", "type": "string", "value": "class = gid - 1"},
    ],
    "layers": [layer],
    "tilesets": [_tileset(scene, folder)],
  }
  with open(os.path.join(folder, f"{name}.tmj"), "w") as f:
    json.dump(tmap, f)
  return [f"{name}.tmj", "tileset.png"]


def decode(tmj: dict) -> np.ndarray:
  """The label map back from a map written by ``write`` (for tests and users)."""
  layer = tmj["layers"][0]
  h, w = tmj["height"], tmj["width"]
  if not tmj["infinite"]:
    return (np.asarray(layer["data"]).reshape(h, w) - 1).astype(np.uint8)
  out = np.zeros((h, w), np.int64)
  for c in layer["chunks"]:
    block = np.asarray(c["data"]).reshape(c["height"], c["width"])
    y0, x0 = c["y"], c["x"]
    part = out[y0 : y0 + c["height"], x0 : x0 + c["width"]]
    part[...] = block[: part.shape[0], : part.shape[1]]
  return (out - 1).astype(np.uint8)
