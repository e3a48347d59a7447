r"""Synthesizes a scene dataset (or one large scene, or engine exports) from a trained workdir or a world.

  python sample.py --workdir=runs/city --output=out/city_synth --num_samples=1000000
  python sample.py --workdir=runs/city --output=out/city_big --scene_size=4096x4096
  python sample.py --workdir=runs/city --output=out/city_unity --scene_size=1025x1025 --export=unity,gltf,tiled
  python sample.py --world=city --output=out/real_city --scene_size=1025x1025 --export=unity,gltf,tiled
  python sample.py --world=characters --output=out/sprites --num_samples=64 --export=sprites
  python sample.py --heightmap=my_dem.tif --output=out/dem --export=unity,godot,gltf
  python sample.py --model=fm_dungeon --output=out/levels --num_samples=64   # a shipped pretrained model

The dataset reads back with no TensorFlow:
  tfds.builder_from_directory('out/city_synth').as_data_source('train')
Rerunning the same command resumes; a finished output is left as it is.
"""

import os
import shutil
import sys

from absl import app, flags

from genenv_jax import cli, exports
from genenv_jax.limits import MAX_SCENE_PIXELS

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir (or give --model, --world or --heightmap).")
_MODEL = flags.DEFINE_string("model", None, "A shipped pretrained model (python -m genenv_jax.models).")
_RENDER = flags.DEFINE_enum(
  "render",
  "model",
  ["model", "world", "finished"],
  "Exports: the model's RGB, the world's rendering of its labels and heights, or 'finished': the level worlds' "
  "finishing pass first mends the labels into a playable level (dungeon, caves, interiors).",
)
_WORLD = flags.DEFINE_string("world", None, "A built-in world as the source instead of a model (real scenes).")
_HEIGHTMAP = flags.DEFINE_string(
  "heightmap", None, "Your own heightmap as the source of --export: .npy or GeoTIFF in metres, or a 16-bit PNG."
)
_LABELS = flags.DEFINE_string("labels", None, "With --heightmap: an 8-bit index PNG of classes (splat, tiled).")
_MPP = flags.DEFINE_float(
  "metres_per_pixel", None, "With --heightmap: ground resolution (default: the GeoTIFF's pixel size)."
)
_EXPORT = flags.DEFINE_string(
  "export", "", f"Engine formats for --scene_size, comma-separated: {','.join(exports.EXPORTERS)}; or 'sprites'."
)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.", required=True)
_NUM = flags.DEFINE_integer("num_samples", 1000, "Samples to write.")
_SEED = flags.DEFINE_integer("seed", 0, "Sample i uses fold_in(PRNGKey(seed), i).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Samples per device call (all local devices).")
_SHARD = flags.DEFINE_integer("shard_size", 10_000, "Samples per output shard.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable).")
_TEMP = flags.DEFINE_float(
  "temperature", None, "Latent scale (truncation for GANs, temperature for flows); default: the family's own."
)
_COND = flags.DEFINE_string(
  "cond", "-1", "Conditional models: the scene class, by name or index (-1: drawn per sample)."
)
_CHUNK = flags.DEFINE_integer("chunk", 8, "Per-device micro-batch; fixes the computation so bytes never vary.")
_KERNELS = flags.DEFINE_string(
  "cpu_convolutions",
  "",
  "Datasets: XLA:CPU's convolution kernels, 'xla' or 'eigen' (both cores per convolution); default: what the "
  "output was started with, else 'eigen' on a CPU. Recorded: they change the float rounding.",
)
_SOLVER = flags.DEFINE_string(
  "solver", "", "Flow matching: the ODE solver (euler, midpoint, heun, adaptive); default: the run's fm.solver."
)
_STEPS = flags.DEFINE_integer("steps", 0, "Flow matching: solver steps; default: the run's fm.sample_steps.")
_FINE_TEMP = flags.DEFINE_float(
  "fine_temperature",
  None,
  "Hierarchical models: the fine level's noise scale, on top of --temperature, in (0, 1]; default: the run's "
  "hier.fine_temperature (1: as trained; lower draws fewer water specks).",
)
_UPPER_TEMP = flags.DEFINE_float(
  "upper_temperature",
  None,
  "Hierarchical models: the coarse and top levels' noise scale, on top of --temperature, in (0, 2]; default: the "
  "run's hier.upper_temperature (1: as trained; higher draws larger lakes and more water).",
)
_TOP_TEMP = flags.DEFINE_float(
  "top_temperature",
  None,
  "Three-level models: the top level's noise scale, on top of --upper_temperature, in (0, 2]; default: the run's "
  "hier.top_temperature (1: as trained; higher lays out larger lakes).",
)
_MIN_WATER = flags.DEFINE_integer(
  "min_water_blocks",
  None,
  "Hierarchical models: coarse water pieces of fewer blocks are given to land before the fine level draws (0: "
  "none); default: the run's hier.min_water_blocks.",
)
_SCENE = flags.DEFINE_string("scene_size", "", "HxW in pixels: write one large tiled scene instead of a dataset.")
_TILE = flags.DEFINE_integer("tile_cells", 32, "Large scenes: tile side in latent cells.")
_SKETCH = flags.DEFINE_string(
  "sketch",
  None,
  "Large scenes of a hierarchical model: a PNG at 1/hier.factor of --scene_size, classes in the world's palette "
  "(or gray heights), that lays out the scene.",
)
_SKETCH_STRENGTH = flags.DEFINE_float(
  "sketch_strength", 0.0, "With --sketch: 0 keeps the sketch's layout, 1 ignores it; in between the model redraws it."
)
_ENGINE = flags.DEFINE_enum(
  "engine", "local", ["local", "ray"], "Datasets: draw shards here, or as tasks of Ray actors (byte-identical)."
)
_RAY_ADDRESS = flags.DEFINE_string(
  "ray_address", "", "--engine=ray: a running cluster ('auto', or HOST:PORT); default: a local cluster."
)
_RAY_WORKERS = flags.DEFINE_integer("ray_workers", 2, "--engine=ray: actors, each holding the jitted generator.")
_FORCE = flags.DEFINE_bool("force", False, f"Large scenes: allow more than {MAX_SCENE_PIXELS:,} pixels.")


def _load():
  """The model: a shipped one (--model) or a workdir's checkpoint (--workdir, --step)."""
  if _MODEL.value:
    from genenv_jax import models

    if _STEP.value is not None:
      raise ValueError("--step: a shipped model has one set of weights; leave --step out")
    return models.load(_MODEL.value)
  from genenv_jax import trained

  return trained.load(_WORKDIR.value, _STEP.value)


def _export():
  """--export: engine-ready folders from a large scene (or a sprite sheet of --num_samples scenes)."""
  from genenv_jax import tiling, trained

  out = os.path.abspath(os.path.expanduser(_OUTPUT.value))
  if _HEIGHTMAP.value:
    return _export_heightmap(out)
  if _WORLD.value:
    source = {"world": _WORLD.value}
  elif _MODEL.value:
    from genenv_jax import models

    source = {"model": _MODEL.value, "sha256": models.card(_MODEL.value)["sha256"]}
  else:
    source = {"workdir": os.path.abspath(_WORKDIR.value)}
  if _EXPORT.value.strip() == "sprites":
    settings = {**source, "format": "sprites", "num_samples": _NUM.value, "seed": _SEED.value}
    model = None if _WORLD.value else _load()
    cond = None
    if model is not None:
      cond = model.cond_index(_COND.value)
      settings.update(cond=cond, render=_RENDER.value)
    return exports.export_sprites(
      out, _WORLD.value, _WORKDIR.value, _NUM.value, _SEED.value, _STEP.value, settings, model=model, cond=cond,
      render=_RENDER.value,
    )  # fmt: skip
  names = exports.parse(_EXPORT.value)
  if not _SCENE.value:
    raise ValueError(f"export={_EXPORT.value!r}: give the scene's size, e.g. --scene_size=1025x1025")
  h, w = tiling.parse_size(_SCENE.value)
  settings = {
    **source,
    "scene_size": [h, w],
    "seed": _SEED.value,
    "step": _STEP.value,
    "temperature": _TEMP.value,
    "render": _RENDER.value,
  }
  exports.clean_stale(out)
  os.makedirs(out, exist_ok=True)
  # The scene (RGB, labels, float heights: 8 bytes a pixel) and the exports, about as much again.
  tiling.check_free_space(out, 2 * 8 * h * w, f"scene_size={h}x{w} with --export")
  if _WORLD.value:
    exports.check_sizes((h, w), names)
    if h * w > exports.MAX_WORLD_PIXELS:
      raise ValueError(
        f"scene_size={h}x{w}: a world's scene is drawn whole in memory, at most "
        f"{exports.MAX_WORLD_PIXELS / 1e6:.0f} Mpixels (8193x8193) with --world"
      )
    scene = exports.from_world(_WORLD.value, h, w, _SEED.value)
    exports.export(scene, out, names, settings)
    return
  model = trained.with_sampler(
    _load(), _SOLVER.value, _STEPS.value, _FINE_TEMP.value, _UPPER_TEMP.value, _TOP_TEMP.value, _MIN_WATER.value
  )
  exports.check_model(model, names, (h, w))
  spool = os.path.join(out, f".tmp-spool-{os.getpid()}")
  os.makedirs(spool)
  try:
    scene = exports.from_model(model, h, w, _SEED.value, spool, _TILE.value, _TEMP.value)
    if _RENDER.value in ("world", "finished"):
      scene = exports.render_with_world(scene, _SEED.value, finished=_RENDER.value == "finished")
    exports.export(scene, out, names, settings)
  finally:
    shutil.rmtree(spool, ignore_errors=True)


def _export_heightmap(out):
  """--heightmap=FILE: your own heights, in metres, into the engines' formats (cropped to a size they take)."""
  from genenv_jax.exports import heightfile

  names = exports.parse(_EXPORT.value)
  if _SCENE.value:
    raise ValueError("--scene_size: the heightmap's own size is used (cropped to what the engines take); drop it")
  scene = heightfile.scene(_HEIGHTMAP.value, names, _MPP.value, _LABELS.value, exports.check_sizes)
  settings = {
    "heightmap": scene.source.split(" ", 1)[1],
    "labels": os.path.abspath(os.path.expanduser(_LABELS.value)) if _LABELS.value else None,
    "metres_per_pixel": scene.metres_per_pixel,
    "scene_size": list(scene.shape),
  }
  exports.clean_stale(out)
  exports.export(scene, out, names, settings)


def main(argv):
  del argv
  cli.start()
  try:
    if sum(bool(v) for v in (_WORKDIR.value, _MODEL.value, _WORLD.value, _HEIGHTMAP.value)) != 1:
      raise ValueError(
        "give one source: --workdir=A_TRAIN_PY_WORKDIR, --model=A_SHIPPED_MODEL, --world=city|terrain|... or "
        "--heightmap=FILE (with --export)"
      )
    if _HEIGHTMAP.value and (not _EXPORT.value or _EXPORT.value.strip() == "sprites"):
      raise ValueError("--heightmap is a source for --export=unity,unreal,godot,gltf,... only")
    if (_LABELS.value or _MPP.value) and not _HEIGHTMAP.value:
      raise ValueError("--labels and --metres_per_pixel go with --heightmap=FILE")
    if _KERNELS.value and (_SCENE.value or _EXPORT.value):
      raise ValueError(
        f"--cpu_convolutions={_KERNELS.value!r} applies to datasets only; large scenes and exports use XLA's "
        "default kernels (drop the flag)"
      )
    if _ENGINE.value == "ray" and (_EXPORT.value or _SCENE.value):
      raise ValueError("--engine=ray draws datasets (--num_samples); large scenes and exports run locally")
    if _SKETCH.value and not _SCENE.value:
      raise ValueError("--sketch lays out a large scene: give --scene_size=HxW with it")
    if _SKETCH.value and _EXPORT.value:
      raise ValueError("--sketch goes with --scene_size only (write the scene, then export it with --heightmap)")
    if not 0.0 <= _SKETCH_STRENGTH.value <= 1.0:
      raise ValueError(
        f"--sketch_strength={_SKETCH_STRENGTH.value}: must be in [0, 1] (0 keeps the sketch, 1 ignores it)"
      )
    if _EXPORT.value:
      _export()
      return 0
    if _WORLD.value:
      raise ValueError("--world is a source for --export only; datasets of a world are made by train.py")
    from genenv_jax import synthesis, tiling, trained  # here: --help stays fast (no JAX import)

    model = trained.with_sampler(
      _load(), _SOLVER.value, _STEPS.value, _FINE_TEMP.value, _UPPER_TEMP.value, _TOP_TEMP.value, _MIN_WATER.value
    )
    cond = model.cond_index(_COND.value)
    if _SCENE.value:
      h, w = tiling.parse_size(_SCENE.value)
      sk = None
      if _SKETCH.value:
        from genenv_jax import sketch

        sk = sketch.load(_SKETCH.value, model.layout)
        hr = (model.family.extras or {}).get("hier")
        if hr is None:
          raise ValueError(
            f"--sketch: family={model.config.family!r} has no coarse level to hold a sketch; train a hierarchical "
            "model (configs/fm_city_hier.py, configs/fm_terrain_hier.py)"
          )
        sk.check_scene(h, w, hr.factor)
      tiling.write_large_scene(
        model,
        _OUTPUT.value,
        h,
        w,
        _SEED.value,
        _TILE.value,
        _TEMP.value,
        cond,
        force=_FORCE.value,
        sketch=sk,
        sketch_strength=_SKETCH_STRENGTH.value,
      )
    else:
      # The settings that fix the output's bytes: the same for both engines.
      kw = dict(
        seed=_SEED.value,
        batch_size=_BATCH.value,
        shard_size=_SHARD.value,
        temperature=_TEMP.value,
        cond=cond,
        chunk=_CHUNK.value,
        cpu_convolutions=_KERNELS.value or None,
      )
      if _ENGINE.value == "ray":
        from genenv_jax.synthesis import ray_engine

        source = {"model": _MODEL.value} if _MODEL.value else {"workdir": _WORKDIR.value, "step": model.step}
        source.update(
          solver=_SOLVER.value,
          steps=_STEPS.value,
          fine_temperature=_FINE_TEMP.value,
          upper_temperature=_UPPER_TEMP.value,
          top_temperature=_TOP_TEMP.value,
          min_water_blocks=_MIN_WATER.value,
        )
        ray_engine.run(
          model, source, _OUTPUT.value, _NUM.value, address=_RAY_ADDRESS.value, workers=_RAY_WORKERS.value, **kw
        )
      else:
        synthesis.run(model, _OUTPUT.value, _NUM.value, **kw)
  except (ValueError, OSError, RuntimeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("interrupted: finished shards are kept; rerun the same command to resume", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
