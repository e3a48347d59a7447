"""Engine-ready exports of a scene: an explicit registry of writers, each into its own folder.

  python sample.py --world=city --output=out/city --scene_size=1025x1025 --export=unity,gltf,tiled
  python sample.py --workdir=runs/gan_city_cpu --output=out/gen --scene_size=2017x2017 --export=unreal

Each format is written into ``OUTPUT/<format>/`` under a temporary name and
renamed when complete, so a failed export leaves nothing half-written; a
format already exported with the same settings is skipped; an output made
with other settings is refused (``export.json`` records them).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Callable, NamedTuple

from genenv_jax import logs
from genenv_jax.exports import heightmaps, meshes, sprites, tiled
from genenv_jax.exports.scene import ExportScene, from_model, from_world, render_with_world

SETTINGS_FILE = "export.json"
MAX_WORLD_PIXELS = 8193 * 8193  # a built-in world's export scene is drawn whole in memory


class Exporter(NamedTuple):
  """A writer and what it reads: exporters declare kinds and views, never world names."""

  write: Callable[..., list[str]]  # (scene, folder) -> files written
  needs: tuple[str, ...]  # scene arrays it reads beyond RGB: 'height', 'labels'
  top_down: bool = False  # heights over a ground plane (a world with a ground scale, or user data)
  side_view: bool = False  # a side view's depth layers (worlds without a ground scale)


def _gltf(scene, folder):
  """Cities as extruded blocks, interiors as walls with openings and furniture, the rest as terrain."""
  if scene.world:
    from genenv_jax.scenes import get_world
    from genenv_jax.scenes.city import CityWorld
    from genenv_jax.scenes.interiors import InteriorsWorld

    world = get_world(scene.world)
    city, interior = isinstance(world, CityWorld), isinstance(world, InteriorsWorld)
  else:
    city = "building" in scene.class_names and scene.labels is not None
    interior = False
  if interior:
    return meshes.interior(scene, folder)
  return meshes.city(scene, folder) if city else meshes.terrain(scene, folder)


EXPORTERS = {
  "unity": Exporter(heightmaps.unity, ("height",), top_down=True),
  "unreal": Exporter(heightmaps.unreal, ("height",), top_down=True),
  "godot": Exporter(heightmaps.godot, ("height",), top_down=True),
  "splat": Exporter(heightmaps.splat, ("labels",)),
  "tiled": Exporter(tiled.write, ("labels",)),
  "gltf": Exporter(_gltf, ("height",), top_down=True),
  "layers": Exporter(sprites.layers, ("labels",), side_view=True),
}


def _view(world: str) -> str:
  """'top-down' for worlds with a ground scale and for user data, else 'side view'."""
  if not world:
    return "top-down"
  from genenv_jax.scenes import get_world

  return "top-down" if getattr(get_world(world), "ground", None) is not None else "side view"


def _check_view(name: str, world: str) -> None:
  e = EXPORTERS[name]
  view = _view(world)
  if (e.top_down and view != "top-down") or (e.side_view and view != "side view"):
    want = "a top-down world with a ground scale (heights in metres)" if e.top_down else "a side-view world"
    from genenv_jax.scenes import WORLDS, get_world

    fits = [w for w in sorted(WORLDS) if (getattr(get_world(w), "ground", None) is not None) == e.top_down]
    raise ValueError(f"export={name!r}: needs {want}, e.g. {fits}; {world or 'user data'!r} is a {view}")


def parse(names: str) -> list[str]:
  """``'unity,gltf'`` -> ['unity', 'gltf']; an unknown name is an error listing the known ones."""
  out = [n.strip() for n in names.split(",") if n.strip()]
  unknown = [n for n in out if n not in EXPORTERS]
  if not out or unknown:
    raise ValueError(
      f"export={names!r}: unknown format(s) {unknown or names!r}; allowed: {sorted(EXPORTERS)} "
      "(or 'sprites' alone, with --num_samples)"
    )
  return out


def check(scene: ExportScene, names: list[str]) -> None:
  """Refuses, before anything is written, a format the scene cannot give or a size the engine cannot take."""
  check_sizes(scene.shape, names)
  for n in names:
    e = EXPORTERS[n]
    _check_view(n, scene.world)
    for need in e.needs:
      if getattr(scene, need) is None:
        what = "heights" if need == "height" else "a label map"
        raise ValueError(f"export={n!r}: needs {what}, which world {scene.world!r} does not have")


def check_sizes(shape, names: list[str]) -> None:
  for n in names:
    if n in ("unity", "unreal"):
      heightmaps.plan(shape, n)


def check_model(trained, names: list[str], shape) -> None:
  """The same refusals as ``check``, from a model's layout, before its scene is rendered."""
  from genenv_jax import tiling

  tiling.check_places(trained)
  check_sizes(shape, names)
  chans = trained.layout.channels
  world = trained.world.name if trained.world is not None else ""
  if trained.family.tiling is None and trained.family.canvas is None:
    raise ValueError(
      f"family={trained.config.family!r}: draws no large scenes (exports need one); the GAN and flow matching do"
    )
  for n in names:
    e = EXPORTERS[n]
    _check_view(n, world)
    for need in e.needs:
      if need not in chans:
        raise ValueError(f"export={n!r}: needs the model's {need!r} channel; it has {list(chans)}")


def export_sprites(output, world, workdir, n, seed, step, settings, model=None, cond=None, render="model") -> list[str]:
  """A sprite sheet of ``n`` scenes: real ones of ``world``, or samples of the model in ``workdir`` (or ``model``).

  ``cond``: a conditional model's scene class index (None: drawn per sample). ``render='world'``: the sprites'
  RGB drawn by the world from the sampled part labels (layout first), not the model's own RGB.
  """
  import numpy as np

  if n < 1 or n > 4096:
    raise ValueError(f"num_samples={n}: a sprite sheet takes 1..4096 frames")
  if world:
    from genenv_jax.scenes import get_world

    w = get_world(world)
    scenes = [w.generate(seed + i, 32) for i in range(n)]
    rgb, labels = np.stack([s.rgb for s in scenes]), np.stack([s.labels for s in scenes])
    names, palette = tuple(w.class_names), w.palette
  else:
    import jax

    from genenv_jax import trained as trained_lib

    model = trained_lib.load(workdir, step) if model is None else model
    if "labels" not in model.layout.channels:
      raise ValueError(f"export='sprites': needs the model's 'labels' channel; it has {list(model.layout.channels)}")
    if render == "finished":
      raise ValueError("render='finished': the finishing pass mends levels (dungeon, caves), not sprites")
    if render == "world" and (model.world is None or not hasattr(model.world, "render")):
      raise ValueError(
        f"render='world': needs a model of a built-in world with a renderer; "
        f"{model.world.name if model.world else 'user data'} has none"
      )
    cond = None if cond is None or cond < 0 else cond  # None: each sample's class drawn by the family
    x = jax.jit(model.family.sample, static_argnums=(2,))(model.params, jax.random.PRNGKey(seed), n, cond)
    dec = model.layout.decode(np.asarray(x))
    rgb, labels, names, palette = dec["rgb"], dec["labels"], model.layout.class_names, model.layout.palette
    if render == "world":
      heights = dec.get("height", [None] * n)
      rgb = np.stack([model.world.render(lab, heights[i], seed=seed + i) for i, lab in enumerate(labels)])
  os.makedirs(output, exist_ok=True)
  _settings(output, settings)
  return _write_folder(output, "sprites", lambda tmp: sprites.sprites(rgb, labels, names, palette, tmp)) or []


def _write_folder(output: str, name: str, write: Callable[[str], list[str]]) -> list[str] | None:
  """Runs ``write(folder)`` into a temporary folder renamed to ``output/name`` when complete.

  Returns the files written, or None when ``output/name`` already exists (same settings, checked before).
  """
  final = os.path.join(output, name)
  if os.path.isdir(final):
    logs.phase(f"{final}: already exported with these settings")
    return None
  tmp = os.path.join(output, f".tmp-{name}-{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  try:
    files = write(tmp)
    os.replace(tmp, final)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  logs.phase(f"wrote {name}: {', '.join(files[:4])}{' ...' if len(files) > 4 else ''} in {final}")
  return files


def _settings(output: str, settings: dict) -> None:
  path = os.path.join(output, SETTINGS_FILE)
  if os.path.exists(path):
    with open(path) as f:
      theirs = json.load(f)
    diff = {k: (theirs.get(k), v) for k, v in settings.items() if theirs.get(k) != v}
    if diff:
      listed = ", ".join(f"{k}: existing {a!r} vs requested {b!r}" for k, (a, b) in sorted(diff.items()))
      raise ValueError(f"output={output!r} holds an export made with other settings ({listed}); use a new --output")
  else:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(settings, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def export(scene: ExportScene, output: str, names: list[str], settings: dict) -> dict[str, list[str]]:
  """Writes each format in ``names`` into ``output/<format>/``; returns the files per format."""
  check(scene, names)
  os.makedirs(output, exist_ok=True)
  _settings(output, settings)
  written = {}
  for n in names:
    files = _write_folder(output, n, lambda tmp, n=n: EXPORTERS[n].write(scene, tmp))
    if files is not None:
      written[n] = files
  return written


def clean_stale(output: str) -> None:
  """Removes temporary export folders of killed runs."""
  if os.path.isdir(output):
    for name in os.listdir(output):
      if name.startswith(".tmp-"):
        shutil.rmtree(os.path.join(output, name), ignore_errors=True)


__all__ = [
  "EXPORTERS",
  "ExportScene",
  "export",
  "export_sprites",
  "parse",
  "check",
  "check_model",
  "from_model",
  "from_world",
  "render_with_world",
  "clean_stale",
]
