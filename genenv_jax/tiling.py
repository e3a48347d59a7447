"""Scenes far larger than the training size, from a fully convolutional generator.

The latent is a field over global cell coordinates: cell (u, v) holds
``normal(fold_in(fold_in(key, u), v))``. A tile of T x T cells is rendered
from the window of (T + 2M) x (T + 2M) cells around it (M >= the generator's
receptive field in cells) and cropped to its centre, so it equals the same
region of one big rendering: no seams, any tile can be regenerated alone,
and memory is bounded by a strip of tiles, never by the scene. Tiles of a
strip are spread over the local devices; strips are streamed into PNGs.
"""

from __future__ import annotations

import glob
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from genenv_jax import canvas, logs, parallel, pngstream
from genenv_jax import workdir as workdir_lib
from genenv_jax.limits import MAX_SCENE_PIXELS as MAX_PIXELS  # larger scenes need --force

_OFFSET = 1 << 24  # fold_in takes uint32: shift coordinates (margins can be negative)


def parse_size(text: str) -> tuple[int, int]:
  m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
  if not m or int(m[1]) < 1 or int(m[2]) < 1:
    raise ValueError(f"scene_size={text!r}: must be HEIGHTxWIDTH in pixels, e.g. 4096x4096")
  return int(m[1]), int(m[2])


def latent_window(key, u0, v0, gh: int, gw: int, channels: int, temperature: float):
  """[gh, gw, channels] latent cells (u0..u0+gh, v0..v0+gw) of the global field."""
  us = jnp.arange(gh) + u0 + _OFFSET
  vs = jnp.arange(gw) + v0 + _OFFSET

  def cell(u, v):
    return jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, u), v), (channels,))

  return temperature * jax.vmap(lambda u: jax.vmap(lambda v: cell(u, v))(vs))(us)


def make_tile_renderer(trained, tile_cells: int, temperature: float, cond: int, mesh=None):
  """Jitted (params, seed, origins [n, 2] in cells) -> [n, T*px, T*px, C] float tiles."""
  tl = trained.family.tiling
  if tl is None:
    raise ValueError(f"family={trained.config.family!r}: no large scenes (GAN and flow matching have them)")
  m, t, px = tl.margin_cells, tile_cells, tl.cell_px
  mesh = mesh or parallel.local_mesh()

  def render(params, seed, origins):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0x711E)
    z = jax.vmap(
      lambda o: latent_window(key, o[0] - m, o[1] - m, t + 2 * m, t + 2 * m, tl.latent_channels, temperature)
    )(origins)
    label = jnp.full((origins.shape[0],), max(cond, 0), jnp.int32)
    x = jax.vmap(lambda zz, ll: tl.render(params, zz[None], ll[None])[0])(z, label)
    return x[:, m * px : (m + t) * px, m * px : (m + t) * px]

  repl, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  return jax.jit(render, in_shardings=(repl, None, rows), out_shardings=rows), mesh.devices.size


def render_region(trained, seed: int, u0: int, v0: int, gh: int, gw: int, temperature: float = 1.0, cond: int = 0):
  """The region of cells [u0, u0+gh) x [v0, v0+gw) rendered in one piece (for tests)."""
  tl = trained.family.tiling
  m, px = tl.margin_cells, tl.cell_px
  key = jax.random.fold_in(jax.random.PRNGKey(seed), 0x711E)
  z = latent_window(key, u0 - m, v0 - m, gh + 2 * m, gw + 2 * m, tl.latent_channels, temperature)
  x = tl.render(trained.params, z[None], jnp.full((1,), max(cond, 0), jnp.int32))[0]
  return np.asarray(x[m * px : (m + gh) * px, m * px : (m + gw) * px])


def check_places(trained) -> None:
  """Refuses large scenes of a sprite world: tiling one item per frame gives smeared stripes, not a place."""
  world = trained.world
  if world is not None and getattr(world, "sprites", False):
    raise ValueError(
      f"world {world.name!r} draws one sprite per frame: a large scene of it is not a place (its canvas smears "
      "items into stripes); sample sprites with --num_samples, or --export=sprites"
    )


def iter_strips(
  trained,
  height: int,
  width: int,
  seed: int,
  tile_cells: int,
  temperature: float,
  cond: int,
  progress: bool = False,
  sketch=None,
  sketch_strength: float = 0.0,
):
  """Yields [rows, width, C] float strips of the scene, top to bottom (``sketch``: see ``canvas.render_hier``)."""
  check_places(trained)
  if trained.family.tiling is None and trained.family.canvas is not None:
    scene = canvas.render_scene(
      trained, height, width, seed, temperature, cond, sketch=sketch, sketch_strength=sketch_strength
    )
    for r in range(0, height, 256):
      yield scene[r : r + 256]
    return
  if sketch is not None:
    raise ValueError(
      f"--sketch: family={trained.config.family!r} has no coarse level to hold a sketch; train a hierarchical "
      "model (configs/fm_city_hier.py, configs/fm_terrain_hier.py)"
    )
  render, n_dev = make_tile_renderer(trained, tile_cells, temperature, cond)
  px = trained.family.tiling.cell_px
  tile_px = tile_cells * px
  rows, cols = -(-height // tile_px), -(-width // tile_px)
  from tqdm import tqdm

  for r in tqdm(range(rows), disable=not progress, unit="strip", desc="scene", dynamic_ncols=True):
    pieces = []
    for c0 in range(0, cols, n_dev):
      origins = np.array([[r * tile_cells, c * tile_cells] for c in range(c0, c0 + n_dev)], np.int32)
      out = np.asarray(jax.device_get(render(trained.params, seed, origins)))
      pieces.extend(out[: min(n_dev, cols - c0)])
    strip = np.concatenate(pieces, axis=1)[:, :width]
    yield strip[: min(tile_px, height - r * tile_px)]


def check_free_space(folder: str, need_bytes: int, what: str) -> None:
  """Refuses, before any work, a job whose output cannot fit in the free space of ``folder``'s disk.

  ``need_bytes`` is the uncompressed size (an upper bound: PNG compresses it, by 2-10x on scenes).
  """
  import shutil

  free = shutil.disk_usage(folder).free
  if need_bytes > free:
    raise ValueError(
      f"{what}: needs up to {need_bytes / 1e9:.1f} GB (uncompressed) and {folder} has {free / 1e9:.1f} GB free; "
      "free space, choose another --output, or a smaller scene",
    )


def write_large_scene(
  trained,
  output,
  height,
  width,
  seed=0,
  tile_cells=32,
  temperature=None,
  cond=-1,
  force=False,
  progress=True,
  sketch=None,
  sketch_strength=0.0,
):
  """Writes ``scene_rgb.png`` (and ``scene_labels.png``, ``scene_height.png`` as 16-bit gray) into ``output``.

  ``temperature=None`` is the family's default. Scenes above ``MAX_PIXELS``
  are refused unless ``force``; temporary files of killed runs are removed.
  """
  from genenv_jax.synthesis import provenance

  check_places(trained)
  if tile_cells < 1:
    raise ValueError(f"tile_cells={tile_cells}: must be >= 1")
  temperature = provenance.check_temperature(trained.family.sample_temperature if temperature is None else temperature)
  lay = trained.layout
  kinds = lay.kinds()
  png_bytes = height * width * sum(3 if (k.categorical or k.planes == 3) else k.bits // 8 for k in kinds)
  if height * width > MAX_PIXELS and not force:
    raise ValueError(
      f"scene_size={height}x{width}: {height * width / 1e6:.0f} Mpixels (~{png_bytes / 1e9:.1f} GB uncompressed) is "
      f"above the limit of {MAX_PIXELS / 1e6:.0f} Mpixels; pass --force to write it anyway"
    )
  os.makedirs(output, exist_ok=True)
  for stale in glob.glob(os.path.join(output, "scene_*.png.tmp*")):
    os.remove(stale)
  check_free_space(output, png_bytes, f"scene_size={height}x{width}")
  logs.phase(f"rendering a {height}x{width} scene ({height * width / 1e6:.1f} Mpixels, ~{png_bytes / 1e6:.0f} MB raw)")
  writers = {}
  for k in kinds:
    planes = 1 if (not k.categorical and k.planes == 1) else 3
    bits = 8 if k.categorical else k.bits  # heights as 16-bit gray: 65536 levels, as the records hold them
    writers[k.name] = pngstream.StripPNG(os.path.join(output, f"scene_{k.name}.png"), height, width, planes, bits)
  try:
    strips = iter_strips(trained, height, width, seed, tile_cells, temperature, cond, progress, sketch, sketch_strength)
    for strip in strips:
      records = jax.device_get(lay.to_records(jnp.asarray(strip)))
      for k in kinds:
        v = records[k.key]
        writers[k.name].write(lay.palette[v] if k.categorical else v)
    for w in writers.values():
      w.close()
  except BaseException:
    for w in writers.values():
      w.abort()
    raise
  workdir_lib.write_json(
    os.path.join(output, "scene.json"),
    {
      "height": height,
      "width": width,
      "seed": seed,
      "tile_cells": tile_cells,
      "temperature": temperature,
      "cond": cond,
      "sketch": None if sketch is None else {"path": os.path.abspath(sketch.path), "strength": sketch_strength},
      "checkpoint_step": trained.step,
      "sampler": provenance.sampler_name(trained),
    },
  )
  logs.phase(f"wrote {', '.join(sorted(os.path.basename(w.path) for w in writers.values()))} to {output}")
