"""3D meshes as glTF 2.0 binaries (``.glb``) with trimesh: terrain heightfields and extruded city blocks.

An OBJ is written beside every ``.glb`` (terrain tiles with their .mtl and
texture; a city's geometry, its colours are in the glb).

Units are metres, +Y up, +X east, +Z south; the image's top-left corner is
the origin. Terrain is a textured heightfield, one ``.glb`` per tile of
``TILE`` cells for large scenes (tiles share their edge vertices). A city is
a ground plane coloured by class plus every building extruded to its height
as its own closed (watertight) mesh. An interior (``interiors`` world) is its
floor plan coloured by class, its walls extruded to the wall height with the
door and window openings left open (window sills and the lintels over doors
and windows as their own blocks) and each piece of furniture a box at its
height.
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

TILE = 256  # cells per terrain tile side


def _grid_faces(rows: int, cols: int) -> np.ndarray:
  """Two upward-facing triangles per cell of a rows x cols vertex grid."""
  idx = np.arange(rows * cols).reshape(rows, cols)
  a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
  c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
  return np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def heightfield(heights_m: np.ndarray, texture: np.ndarray, mpp: float, r0: int, c0: int):
  """A textured trimesh of a height window whose top-left sample is global pixel (r0, c0)."""
  import trimesh

  rows, cols = heights_m.shape
  jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
  verts = np.stack([(jj + c0) * mpp, heights_m, (ii + r0) * mpp], -1).reshape(-1, 3)
  uv = np.stack([jj / max(cols - 1, 1), 1.0 - ii / max(rows - 1, 1)], -1).reshape(-1, 2)  # trimesh: v up
  visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(np.ascontiguousarray(texture)))
  return trimesh.Trimesh(verts, _grid_faces(rows, cols), visual=visual, process=False)


def _no_pinches(m: np.ndarray) -> np.ndarray:
  """Fills one pixel of every 2x2 diagonal pair, so no two pixels share only a corner (a closed 2-manifold)."""
  m = m.copy()
  while True:
    a, b, c, d = m[:-1, :-1], m[:-1, 1:], m[1:, :-1], m[1:, 1:]
    main, anti = a & d & ~b & ~c, b & c & ~a & ~d
    if not (main.any() or anti.any()):
      return m
    i, j = np.nonzero(main)
    m[i, j + 1] = True  # top-right pixel of each window pinched on its main diagonal
    i, j = np.nonzero(anti)
    m[i, j] = True  # top-left pixel of each window pinched on its other diagonal


def extrude(mask: np.ndarray, top_m: float, mpp: float, r0: int = 0, c0: int = 0, bottom_m: float = 0.0):
  """A closed mesh: the pixels of ``mask`` raised from ``bottom_m`` to ``top_m`` metres (walls on every outer edge)."""
  import trimesh

  h, w = mask.shape
  m = _no_pinches(np.pad(mask.astype(bool), 1))
  n = (h + 3) * (w + 3)  # corner grid of the padded mask

  def corner(i, j, top):
    return (i * (w + 3) + j) + (0 if top else n)

  faces = []
  ii, jj = np.nonzero(m)
  a, b, c, d = corner(ii, jj, 1), corner(ii, jj + 1, 1), corner(ii + 1, jj, 1), corner(ii + 1, jj + 1, 1)
  a_, b_, c_, d_ = corner(ii, jj, 0), corner(ii, jj + 1, 0), corner(ii + 1, jj, 0), corner(ii + 1, jj + 1, 0)
  faces += [np.stack([a, c, b], 1), np.stack([b, c, d], 1)]  # roof, facing up
  faces += [np.stack([a_, b_, c_], 1), np.stack([b_, d_, c_], 1)]  # floor, facing down
  for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
    out = ~m[ii + di, jj + dj]
    i, j = ii[out], jj[out]
    if di == -1:  # north wall along z = i, facing -z
      p, q = (i, j), (i, j + 1)
      flip = False
    elif di == 1:  # south wall along z = i + 1, facing +z
      p, q = (i + 1, j), (i + 1, j + 1)
      flip = True
    elif dj == -1:  # west wall along x = j, facing -x
      p, q = (i + 1, j), (i, j)
      flip = False
    else:  # east wall along x = j + 1, facing +x
      p, q = (i + 1, j + 1), (i, j + 1)
      flip = True
    pt, qt, pb, qb = corner(*p, 1), corner(*q, 1), corner(*p, 0), corner(*q, 0)
    tri1, tri2 = np.stack([pb, pt, qt], 1), np.stack([pb, qt, qb], 1)
    faces += [tri1[:, ::-1], tri2[:, ::-1]] if flip else [tri1, tri2]
  gi, gj = np.divmod(np.arange(2 * n) % n, w + 3)
  y = np.where(np.arange(2 * n) < n, top_m, bottom_m)
  verts = np.stack([(gj - 1 + c0) * mpp, y, (gi - 1 + r0) * mpp], 1)
  mesh = trimesh.Trimesh(verts, np.concatenate(faces), process=True)
  mesh.remove_unreferenced_vertices()
  return mesh


def _save(scene, path):
  data = scene.export(file_type="glb")
  with open(path, "wb") as f:
    f.write(data)


def _save_obj(mesh, folder: str, name: str) -> list[str]:
  """Wavefront OBJ beside the glb, where trimesh writes it (a textured mesh: with its .mtl and texture)."""
  import trimesh

  text, files = trimesh.exchange.obj.export_obj(mesh, include_texture=True, return_texture=True, mtl_name=f"{name}.mtl")
  # trimesh names every texture material_0.png: prefix the tile's name, so tiles in one folder keep their own.
  textures = {f: f"{name}_{f}" for f in files if f != f"{name}.mtl"}
  with open(os.path.join(folder, f"{name}.obj"), "w") as f:
    f.write(text)
  for fname, data in files.items():
    if fname == f"{name}.mtl":
      for old, new in textures.items():
        data = data.replace(old.encode(), new.encode())
    with open(os.path.join(folder, textures.get(fname, fname)), "wb") as f:
      f.write(data)
  return [f"{name}.obj", *(textures.get(f, f) for f in files)]


def terrain(scene, folder: str, name: str = "terrain") -> list[str]:
  """Textured heightfield tiles ``<name>_<x>_<z>.glb`` (one ``<name>.glb`` when the scene fits one tile)."""
  import trimesh

  if scene.height is None:
    raise ValueError(f"gltf: the scene has no height channel (world {scene.world!r}); terrain meshes need one")
  h, w = scene.shape
  starts_r, starts_c = list(range(0, max(h - 1, 1), TILE)), list(range(0, max(w - 1, 1), TILE))
  one = len(starts_r) == len(starts_c) == 1
  paths = []
  for zi, r0 in enumerate(starts_r):
    for xi, c0 in enumerate(starts_c):
      win = (slice(r0, r0 + TILE + 1), slice(c0, c0 + TILE + 1))
      mesh = heightfield(scene.height_m(win), np.asarray(scene.rgb[win]), scene.metres_per_pixel, r0, c0)
      stem = name if one else f"{name}_{xi}_{zi}"
      _save(trimesh.Scene({name: mesh}), os.path.join(folder, f"{stem}.glb"))
      paths.append(f"{stem}.glb")
      paths += _save_obj(mesh, folder, stem)  # an OBJ (+ .mtl and texture) beside every .glb
  return paths


def city(scene, folder: str, name: str = "city", building_class: str = "building") -> list[str]:
  """``<name>.glb``: the ground coloured by class and each building a closed mesh at its median height."""
  import trimesh
  from scipy import ndimage

  if scene.labels is None or scene.height is None or building_class not in scene.class_names:
    raise ValueError(f"gltf city: needs a label map with a {building_class!r} class and heights")
  labels = np.asarray(scene.labels)
  h, w = labels.shape
  mpp = scene.metres_per_pixel
  geometry = {}
  ground = heightfield(np.zeros((h + 1, w + 1)), scene.palette[np.pad(labels, ((0, 1), (0, 1)), "edge")], mpp, 0, 0)
  geometry["ground"] = ground
  b = scene.class_names.index(building_class)
  comps, count = ndimage.label(labels == b)
  heights = np.asarray(scene.height_m())
  colour = np.append(scene.palette[b], 255).astype(np.uint8)
  for k, sl in enumerate(ndimage.find_objects(comps), start=1):
    mask = comps[sl] == k
    top = float(np.median(heights[sl][mask]))
    mesh = extrude(mask, max(top, 0.5 * mpp), mpp, sl[0].start, sl[1].start)
    mesh.visual.face_colors = colour
    geometry[f"building_{k:05d}"] = mesh
  _save(trimesh.Scene(geometry), os.path.join(folder, f"{name}.glb"))
  with open(os.path.join(folder, f"{name}.obj"), "w") as f:
    f.write(trimesh.Scene(geometry).export(file_type="obj"))  # geometry; colours are in the glb
  with open(os.path.join(folder, f"{name}.json"), "w") as f:
    json.dump({"buildings": int(count), "metres_per_pixel": mpp, "up": "+Y", "origin": "image top-left"}, f, indent=1)
  return [f"{name}.glb", f"{name}.obj", f"{name}.json"]


DOOR_TOP_M = 2.1  # the top of a door or window opening; a lintel fills the wall above it
SILL_M = 1.0


def interior(scene, folder: str, name: str = "interior") -> list[str]:
  """``<name>.glb``: the plan coloured by class, walls with their openings, lintels, sills and furniture boxes."""
  import trimesh
  from scipy import ndimage

  need = ("exterior_wall", "interior_wall", "door", "window")
  if scene.labels is None or any(c not in scene.class_names for c in need):
    raise ValueError(f"gltf interior: needs a label map with the classes {list(need)}")
  labels = np.asarray(scene.labels)
  h, w = labels.shape
  mpp = scene.metres_per_pixel
  names = list(scene.class_names)
  idx = {c: i for i, c in enumerate(names)}
  wall_m = float(scene.height_range_m)
  heights = np.asarray(scene.height_m())
  geometry = {"floor": heightfield(np.zeros((h + 1, w + 1)), scene.palette[np.pad(labels, ((0, 1), (0, 1)), "edge")],
                                   mpp, 0, 0)}  # fmt: skip

  def add(key, mask, top, bottom, cls):
    comps, count = ndimage.label(mask)
    colour = np.append(scene.palette[idx[cls]], 255).astype(np.uint8)
    for k, sl in enumerate(ndimage.find_objects(comps), start=1):
      part = comps[sl] == k
      t = top if top is not None else max(float(np.median(heights[sl][part])), 0.1)
      mesh = extrude(part, t, mpp, sl[0].start, sl[1].start, bottom)
      mesh.visual.face_colors = colour
      geometry[f"{key}_{k:04d}"] = mesh
    return count

  walls = add("wall", np.isin(labels, (idx["exterior_wall"], idx["interior_wall"])), wall_m, 0.0, "exterior_wall")
  add("lintel", np.isin(labels, (idx["door"], idx["window"])), wall_m, DOOR_TOP_M, "interior_wall")
  add("sill", labels == idx["window"], SILL_M, 0.0, "exterior_wall")
  furniture = names[names.index("bed") :] if "bed" in names else []  # interiors.CLASS_NAMES: furniture from 'bed' on
  pieces = 0
  for cls in furniture:
    pieces += add(cls, labels == idx[cls], None, 0.0, cls)
  _save(trimesh.Scene(geometry), os.path.join(folder, f"{name}.glb"))
  with open(os.path.join(folder, f"{name}.obj"), "w") as f:
    f.write(trimesh.Scene(geometry).export(file_type="obj"))  # geometry; colours are in the glb
  info = {"walls": int(walls), "furniture": int(pieces), "wall_height_m": wall_m, "door_top_m": DOOR_TOP_M,
          "metres_per_pixel": mpp, "up": "+Y", "origin": "image top-left"}  # fmt: skip
  with open(os.path.join(folder, f"{name}.json"), "w") as f:
    json.dump(info, f, indent=1)
  return [f"{name}.glb", f"{name}.obj", f"{name}.json"]
