r"""Renders an exported ``.glb`` file to a PNG, headless: the file is read back with trimesh and drawn.

  python tools/render_glb.py out/city/gltf/city.glb docs/export_city_glb.png
  python tools/render_glb.py out/terrain/gltf/terrain.glb docs/export_terrain_glb.png --stride=2

What is drawn is what the file holds (vertices, faces, face or texture
colours), seen from the south-east at 35 degrees with Lambert shading; the
renderer is matplotlib's Agg backend (no display, no GPU). Large terrains
are drawn with every ``--stride``-th vertex.
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402


def _face_colours(mesh) -> np.ndarray:
  """[faces, 3] colours in [0, 1]: face colours, or the texture sampled at each face's centre."""
  vis = mesh.visual
  if isinstance(vis, trimesh.visual.TextureVisuals) and vis.uv is not None:
    img = np.asarray(vis.material.baseColorTexture.convert("RGB"), np.float64) / 255.0
    uv = vis.uv[mesh.faces].mean(1)
    h, w = img.shape[:2]
    x = np.clip((uv[:, 0] * (w - 1)).round().astype(int), 0, w - 1)
    y = np.clip(((1 - uv[:, 1]) * (h - 1)).round().astype(int), 0, h - 1)
    return img[y, x]
  return np.asarray(vis.face_colors[:, :3], np.float64) / 255.0


def _decimate(mesh, stride: int):
  """Every ``stride``-th vertex of a grid mesh (terrain), keeping its colours."""
  if stride <= 1:
    return mesh
  n = int(round(np.sqrt(len(mesh.vertices))))
  if n * n != len(mesh.vertices):
    return mesh
  keep = np.arange(0, n, stride)
  colours = _face_colours(mesh)
  idx = np.arange(n * n).reshape(n, n)[np.ix_(keep, keep)]
  a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
  faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
  # Colour of the original face nearest each new face's first vertex.
  cell = (np.arange(n * n).reshape(n, n)[np.ix_(keep[:-1], keep[:-1])]).ravel()
  row, col = np.divmod(cell, n)
  orig = row * (n - 1) + col
  fc = np.concatenate([colours[orig], colours[orig]])
  out = trimesh.Trimesh(mesh.vertices, faces, process=False)
  out.visual.face_colors = (np.clip(fc, 0, 1) * 255).astype(np.uint8)
  return out


def render(path: str, out: str, stride: int = 1, size: float = 8.0) -> None:
  scene = trimesh.load(path)
  meshes = list(scene.geometry.values()) if isinstance(scene, trimesh.Scene) else [scene]
  meshes = [_decimate(m, stride) for m in meshes]
  verts = [m.vertices[m.faces] for m in meshes]
  colours = np.concatenate([_face_colours(m) for m in meshes])
  tris = np.concatenate(verts)
  normals = np.concatenate([m.face_normals for m in meshes])
  light = np.array([0.4, 0.8, 0.45])
  light /= np.linalg.norm(light)
  shade = np.clip(0.35 + 0.75 * np.abs(normals @ light), 0, 1.1)[:, None]
  fig = plt.figure(figsize=(size, size * 0.75), dpi=110)
  ax = fig.add_subplot(projection="3d")
  # glTF is +Y up, +Z south: plot (x, z, y) so that matplotlib's z is up; north is away from the viewer.
  fc = np.clip(colours * shade, 0, 1)
  poly = Poly3DCollection(tris[..., [0, 2, 1]], facecolors=fc, edgecolors=fc, linewidths=0.2, antialiased=False)
  ax.add_collection3d(poly)
  lo, hi = scene.bounds
  span = max(hi[0] - lo[0], hi[2] - lo[2])
  ax.set_xlim(lo[0], lo[0] + span)
  ax.set_ylim(lo[2] + span, lo[2])
  ax.set_zlim(lo[1], lo[1] + max(span * 0.35, hi[1] - lo[1]))
  ax.set_box_aspect((1, 1, 0.35))
  ax.view_init(elev=35, azim=-60)
  ax.set_axis_off()
  fig.tight_layout(pad=0)
  fig.savefig(out, bbox_inches="tight", facecolor="white")
  print(f"wrote {out}: {len(tris)} triangles from {path}")


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("glb")
  ap.add_argument("png")
  ap.add_argument("--stride", type=int, default=1)
  a = ap.parse_args()
  render(a.glb, a.png, a.stride)


if __name__ == "__main__":
  main()
