"""Large-scene evaluation (``eval.py --scene_size=HxW``): generated canvases beside real regions.

For a model trained on a world, N large scenes are drawn from its seamless
canvas (``tiling``: the latent field keyed by global cell coordinates, so the
canvas is one piece) and compared with N real regions of the same size from
the world's unbounded version (``city_regions``; a bounded world's scene at
that size otherwise), with the untrained model as the floor:

* ``validity``: the whole scene passes every rule of the world (the rules
  of a region hold at any size);
* ``crop_validity`` and each rule's pass rate on the scene's non-overlapping
  training-size crops, and ``crop_stats_distance`` of those crops against
  real crops;
* ``crop_fd`` / ``crop_kid`` / ``crop_c2st_pixels`` on the crops (the
  feature network reads training-size scenes), against real crops of other
  seeds;
* ``sample_validity``: the model's own training-size samples judged by the
  same rules (what a large scene's crops are compared with);
* ``seam``: the mean RGB change across the borders of the training-size
  grid divided by the mean change inside it, by columns and rows (1.0 = no
  seam; real regions give the spread of this ratio);
* whole scenes at once, against N further real regions of the same size:
  ``coarse_fd`` / ``coarse_kid`` / ``coarse_c2st`` on the scenes
  downsampled to 32 px, and the large structures of ``metrics.multiscale``
  (``ms/...``: water bodies, road network, patch sizes, height spectrum,
  drainage); the "real" column is then the real-vs-real spread.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np

from genenv_jax import canvas, logs, parallel, tiling, trained
from genenv_jax.metrics import feature_metrics, multiscale, scene_metrics, two_sample

EVAL_SEED = 0x1A46E


def crops(x: np.ndarray, size: int) -> np.ndarray:
  """[n, H, W, ...] -> [n * (H//size) * (W//size), size, size, ...] non-overlapping crops."""
  n, h, w = x.shape[:3]
  gh, gw = h // size, w // size
  rest = x.shape[3:]
  x = x[:, : gh * size, : gw * size].reshape(n, gh, size, gw, size, *rest)
  return np.moveaxis(x, 3, 2).reshape(n * gh * gw, size, size, *rest)


def seam_ratio(rgb: np.ndarray, period: int) -> float:
  """Mean |RGB change| across grid borders (x, y = period*k) over the mean change elsewhere."""
  a = np.asarray(rgb, np.float64)
  ratios = []
  for axis in (1, 2):
    d = np.abs(np.diff(a, axis=axis)).mean(axis=-1)  # [n, h-1, w] or [n, h, w-1]
    d = d.mean(axis=3 - axis)  # per position along the axis
    pos = np.arange(d.shape[1])
    border = (pos % period) == period - 1  # the change from the last pixel of a tile to the next tile
    if border.any() and (~border).any():  # a 32-px-tall strip has no border along y
      ratios.append(d[:, border].mean() / d[:, ~border].mean())
  return float(np.mean(ratios)) if ratios else float("nan")


def score(world, scenes, crop: int, ref_crops, ref_stats, fnet, ref_feats, mesh=None, coarse=None):
  """The large-scene metrics of decoded scenes {'rgb', 'labels', 'height'} (see the module doc).

  ``coarse``: the whole-scene reference (``coarse_reference``): adds the coarse appearance and the large
  structures (``multiscale``) of the scenes against real regions of the same size and count.
  """
  out = {}
  if coarse is not None:
    out.update(score_coarse(world, scenes, coarse, fnet, mesh))
  labels, height = scene_metrics.scene_maps(scenes, world)
  whole, _ = scene_metrics.per_scene(world, labels, height)
  out["validity"] = float(whole.all(1).mean())
  small = {k: crops(v, crop) for k, v in scenes.items()}
  c_lab, c_h = scene_metrics.scene_maps(small, world)
  for k, v in scene_metrics.evaluate(world, c_lab, c_h, ref_stats).items():
    out[f"crop_{k}"] = v
  out["crop_c2st_pixels"] = two_sample.c2st(
    two_sample.pixel_statistics(ref_crops["rgb"]), two_sample.pixel_statistics(small["rgb"]), mesh
  )
  if fnet is not None:
    m = feature_metrics.compare(ref_feats, fnet.features(small["rgb"]), fnet.mesh)
    out.update({f"crop_{k}": m[k] for k in ("fd", "kid", "precision", "recall")})
  out["seam"] = seam_ratio(scenes["rgb"], crop)
  out["num_crops"] = len(small["rgb"])
  return out


def coarse_reference(world, n: int, h: int, w: int, fnet) -> dict:
  """n real regions of h x w (seeds away from every other set): downsampled RGB, features, large structures."""
  real = real_regions(world, n, h, w, 2 * 10**6)
  small = multiscale.downsample_rgb(real["rgb"])
  return {
    "rgb": small,
    "pixels": two_sample.pixel_statistics(small),
    "features": None if fnet is None else fnet.features(small),
    "stats": multiscale.evaluate(real["labels"], real["height"], world.class_names),
  }


def score_coarse(world, scenes, coarse: dict, fnet, mesh=None) -> dict:
  """Whole scenes seen at once: downsampled to the feature network's 32 px (``coarse_fd``, ``coarse_kid``,
  ``coarse_c2st``) and their large structures against the coarse reference (``ms/...``, see ``multiscale``)."""
  small = multiscale.downsample_rgb(scenes["rgb"])
  # The classifier two-sample test cross-validates over 5 folds and KID needs 4 scenes: with fewer scenes
  # per set they are undefined (null), not made up.
  enough = min(len(small), len(coarse["rgb"])) >= 5
  out = {"coarse_c2st": two_sample.c2st(coarse["pixels"], two_sample.pixel_statistics(small), mesh) if enough else None}
  if fnet is not None:
    m = feature_metrics.compare(coarse["features"], fnet.features(small), fnet.mesh) if enough else {}
    out["coarse_fd"], out["coarse_kid"] = m.get("fd"), m.get("kid")
  labels, height = scene_metrics.scene_maps(scenes, world)
  for k, v in multiscale.compare(coarse["stats"], multiscale.evaluate(labels, height, world.class_names)).items():
    out[f"ms/{k}"] = v
  return out


def real_sets(world, k: int, n: int, h: int, w: int, coarse: dict, fnet, mesh=None) -> list[dict]:
  """The whole-scene figures (``score_coarse``) of k sets of n real regions of h x w against the reference
  ``coarse``: how far real draws of the same count sit from it, the spread a model's row is read against.

  Set i holds seeds i*n .. i*n+n-1, so set 0 is ``evaluate``'s "real" set (its row in
  ``results/large_scenes.json``); the reference's seeds (2*10**6..) and the crop reference's (10**6..) stay
  apart for k*n below 10**6.
  """
  if not isinstance(k, int) or k < 1:
    raise ValueError(f"real_sets={k!r}: need 1 or more sets of real regions")
  if k * n > 10**6:
    raise ValueError(f"real_sets={k} of {n}: their seeds would reach the reference's (10**6)")
  return [score_coarse(world, real_regions(world, n, h, w, i * n), coarse, fnet, mesh) for i in range(k)]


def real_as_far(figure: float, real: list[float]) -> float:
  """The share of real sets (``real_sets``' figures for one key) at least as far from the reference as ``figure``
  (1: every real draw sits as far; 0: none does, the figure is past the whole real spread)."""
  if not real:
    raise ValueError("real_as_far: no real figures to read against")
  return float(sum(r >= figure for r in real) / len(real))


def judge_world(world):
  """The unbounded version of ``world`` where there is one (its regions are the real large scenes), else itself."""
  from genenv_jax.scenes import WORLDS, get_world

  name = world.name
  return get_world(f"{name}_regions") if f"{name}_regions" in WORLDS else world


def real_regions(world, n: int, h: int, w: int, first_seed: int) -> dict[str, np.ndarray]:
  """n real scenes of h x w from seeds first_seed.. (regions of an unbounded world)."""
  rows = [
    world.region(first_seed + i, 0, 0, h, w) if hasattr(world, "region") else world.generate(first_seed + i, h)
    for i in range(n)
  ]
  return {
    "rgb": np.stack([r.rgb for r in rows]),
    "labels": np.stack([r.labels for r in rows]),
    "height": np.stack([r.height for r in rows]),
  }


def weights_key(params) -> str:
  """16 hex digits of the sha256 of every parameter (paths and values): the key of a ``model_regions`` cache."""
  import hashlib

  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(params))[0]:
    h.update(jax.tree_util.keystr(path).encode())
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()[:16]


def load_models(
  workdirs=(),
  names=(),
  fine_temperatures=(),
  upper_temperatures=(),
  weights=(),
  top_temperatures=(),
  min_water_blocks=(),
) -> list:
  """Trained models for the tools that compare several: ``workdirs`` then shipped ``names``, in that order, each
  sampled at its fine-level temperature (``fine_temperatures``: one per model, or none for all at 1) and its
  upper levels' and top level's (``upper_temperatures``, ``top_temperatures``, likewise) and with its
  ``hier.min_water_blocks`` (``min_water_blocks``: one int per model, or none for each model's own); ``weights``:
  one ``.npz`` per shipped name ('' for its own parameters; ``models.load(weights=)``); a ValueError names a
  count or value that does not fit."""
  from genenv_jax import models, trained

  if weights and len(weights) != len(names):
    got = ",".join(weights)
    raise ValueError(f"weights={got}: give one per --model ({len(names)}; '' for its own parameters)")
  ws = list(weights) or [""] * len(names)
  ms = [trained.load(w) for w in workdirs] + [models.load(m, weights=w or None) for m, w in zip(names, ws)]
  if not ms:
    raise ValueError("no model: give --workdir=W or --model=NAME (repeatable)")

  def per_model(name, values, allowed):
    if values and len(values) != len(ms):
      got = ",".join(str(t) for t in values)
      raise ValueError(f"{name}={got}: give one per model ({len(ms)}: workdirs first, then models)")
    try:
      return [None if float(t) == 1.0 else float(t) for t in values] or [None] * len(ms)
    except ValueError:
      got = ",".join(str(t) for t in values)
      raise ValueError(f"{name}={got}: must be numbers in {allowed}, one per model") from None

  fts = per_model("fine_temperature", fine_temperatures, "(0, 1]")
  uts = per_model("upper_temperature", upper_temperatures, "(0, 2]")
  tts = per_model("top_temperature", top_temperatures, "(0, 2]")
  if min_water_blocks and len(min_water_blocks) != len(ms):
    got = ",".join(str(n) for n in min_water_blocks)
    raise ValueError(f"min_water_blocks={got}: give one per model ({len(ms)}: workdirs first, then models)")
  try:
    mws = [int(n) for n in min_water_blocks] or [None] * len(ms)
  except ValueError:
    got = ",".join(str(n) for n in min_water_blocks)
    raise ValueError(f"min_water_blocks={got}: must be ints >= 0, one per model") from None
  return [
    trained.with_sampler(m, fine_temperature=t, upper_temperature=u, top_temperature=v, min_water_blocks=mw)
    for m, t, u, v, mw in zip(ms, fts, uts, tts, mws)
  ]


def cache_key(model, params=None) -> str:
  """The directory name of a model's scene cache: ``weights_key`` of its parameters (or of ``params``, a part of
  them, e.g. one level's) and, for a hierarchical model whose fine level is sampled colder
  (``hier.fine_temperature`` below 1), ``-fine{T}``, and whose upper levels are sampled at another temperature
  (``hier.upper_temperature``), ``-upper{T}``, and a top level's (``hier.top_temperature``), ``-top{T}``; at the
  defaults 1 the scenes are the default's, so is the key. A coarse level drawn on windows wider than the fine
  level's (``hier.coarse_window``) adds ``-cw{W}``, and a coarse level that draws a river field
  (``hier.coarse_field``) ``-river{S}``, its ``hier.river_share`` (sampling only, so not in the weights), and
  ``hier.min_water_blocks`` above 1 ``-prune{N}`` (sampling only).
  ``params`` of the fine level alone (its scenes over given coarse maps) ignore the upper temperature."""
  key = weights_key(model.params if params is None else params)
  hr = (model.family.extras or {}).get("hier")
  t = float(getattr(hr, "fine_temperature", 1.0)) if hr is not None else 1.0
  up = float(getattr(hr, "upper_temperature", 1.0)) if hr is not None and params is None else 1.0
  top = float(getattr(hr, "top_temperature", 1.0)) if hr is not None and params is None else 1.0
  key += ("" if t == 1.0 else f"-fine{t:g}") + ("" if up == 1.0 else f"-upper{up:g}")
  cw = hr.coarse.window if hr is not None and params is None and hr.coarse.window != hr.fine.window else 0
  river = f"-river{hr.river_share:g}" if hr is not None and params is None and hr.field is not None else ""
  prune = f"-prune{hr.min_water_blocks}" if hr is not None and params is None and hr.pruning else ""
  return key + ("" if top == 1.0 else f"-top{top:g}") + (f"-cw{cw}" if cw else "") + river + prune


def _cached(cache_dir: str | None, name: str, make):
  """``make()``, or the array a run before this one stored under ``cache_dir/name.npy`` (written atomically)."""
  if not cache_dir:
    return make()
  path = os.path.join(cache_dir, f"{name}.npy")
  if os.path.exists(path):
    try:
      return np.load(path)
    except (OSError, ValueError) as e:  # a torn file: drawn again
      logs.phase(f"{path}: unreadable ({e}); drawing it again")
  x = make()
  os.makedirs(cache_dir, exist_ok=True)
  with open(path + ".tmp", "wb") as f:
    np.save(f, x)
  os.replace(path + ".tmp", path)
  return x


def model_regions(
  model, n: int, h: int, w: int, params=None, desc: str = "scenes", cache_dir: str | None = None
) -> dict[str, np.ndarray]:
  """n large scenes of the model's seamless canvas (seeds 0..n-1), decoded (a progress bar named ``desc``).

  ``cache_dir``: each scene drawn is kept there as it is finished (``{desc}_{h}x{w}_seed{s}.npy``, the model
  tensor), and scenes already there are read back, so an interrupted evaluation of scenes that take minutes
  each resumes where it stopped. The directory must belong to one set of parameters (the caller keys it).
  """
  m = model if params is None else dataclasses.replace(model, params=params)
  tl = model.family.tiling
  if tl is None and model.family.canvas is not None:
    if canvas.zero_velocity(m, m.params):  # an untrained flow-matching network: the ODE keeps its noise
      logs.phase(f"{desc}: the network's velocity is zero everywhere, so each scene is its starting noise")
      return model.layout.decode(np.stack([canvas.still_scene(m, h, w, seed=s) for s in range(n)]))
    tag = desc.replace(" ", "_")
    x = np.stack(
      [
        _cached(cache_dir, f"{tag}_{h}x{w}_seed{s}", lambda s=s: canvas.render_scene(m, h, w, seed=s))
        for s in logs.progress(range(n), desc, unit="scene")
      ]
    )
    return model.layout.decode(x)
  if tl is None:
    raise ValueError(f"family={model.config.family!r}: no large scenes (GAN and flow matching have them)")
  if h % tl.cell_px or w % tl.cell_px:
    raise ValueError(f"scene_size={h}x{w}: must be a multiple of the model's {tl.cell_px}-px latent cell")
  x = np.stack(
    [
      tiling.render_region(m, s, 0, 0, h // tl.cell_px, w // tl.cell_px)
      for s in logs.progress(range(n), desc, None, "scene")
    ]
  )
  return model.layout.decode(x)


def evaluate(
  workdir: str,
  height: int,
  width: int,
  n: int,
  feature_net: str = "default",
  step=None,
  mesh=None,
  model=None,
  cache_dir: str | None = None,
) -> dict:
  """Scores n generated h x w scenes, n real regions and n untrained-model scenes (see the module doc).

  ``cache_dir``: keeps each drawn scene (``model_regions``), so a rerun resumes.
  """
  from genenv_jax.metrics import scorer

  model = trained.load(workdir, step) if model is None else model  # or a shipped model, loaded
  if model.world is None:
    raise ValueError(f"workdir={workdir!r}: trained on user data; large-scene scores need a built-in world")
  tiling.check_places(model)
  # Judged by the unbounded version of the world where there is one: its rules hold
  # for a region of any size and its regions are the real large scenes.
  world = judge_world(model.world)
  crop = model.spec.image_size
  if height < crop or width < crop or height % crop or width % crop:
    raise ValueError(f"scene_size={height}x{width}: must be a multiple of the training size {crop}")
  if not isinstance(n, int) or n < 2:
    raise ValueError(f"num_samples={n!r}: need at least 2 large scenes per set")
  mesh = mesh or parallel.make_mesh(-1)
  logs.phase(
    f"scoring {n} scenes of {height}x{width} from step {model.step}, {n} real regions and {n} untrained scenes"
  )
  fnet = scorer.make_feature_net(feature_net, mesh)
  # The reference: real training-size crops of other worlds' regions (seeds away from the compared ones).
  per = (height // crop) * (width // crop)
  n_ref = max(2, -(-max(n * per, 256) // per))
  with logs.waiting(f"drawing the reference: {n_ref} real regions of {world.name}, cut into {crop}-px crops"):
    ref = real_regions(world, n_ref, height, width, 10**6)
    ref_crops = {k: crops(v, crop) for k, v in ref.items()}
    ref_stats = scene_metrics.per_scene(world, ref_crops["labels"], ref_crops["height"])[1]
    ref_feats = None if fnet is None else fnet.features(ref_crops["rgb"])
  with logs.waiting(f"drawing {n} real regions of {height}x{width}, and {n} more as the whole-scene reference"):
    sets = {"real": real_regions(world, n, height, width, 0)}
    coarse = coarse_reference(world, n, height, width, fnet)
  logs.phase(f"rendering {n} model scenes of {height}x{width} (the first one compiles)")
  sets["model"] = model_regions(model, n, height, width, desc="model scenes", cache_dir=cache_dir)
  dummy = {"x": np.zeros((2, crop, crop, model.spec.channels), np.float32), "label": np.zeros((2,), np.int32)}
  fresh = jax.jit(model.family.init)(jax.random.PRNGKey(model.config.seed), dummy).ema_params
  logs.phase(f"rendering {n} untrained scenes of {height}x{width}")
  sets["untrained"] = model_regions(model, n, height, width, params=fresh, desc="untrained scenes", cache_dir=cache_dir)
  out = {
    "workdir": workdir,
    "checkpoint_step": model.step,
    "scene_size": [height, width],
    "num_scenes": n,
    "crop": crop,
    "world": world.name,
  }
  for name, scenes in sets.items():
    with logs.waiting(f"scoring the {name} scenes"):
      out[name] = score(world, scenes, crop, ref_crops, ref_stats, fnet, ref_feats, mesh, coarse)
  # The models' own single samples under the same rules (the real ones: real crops, 1.0 by construction).
  sample = jax.jit(model.family.sample, static_argnums=(2,), out_shardings=parallel.batch_sharded(mesh))
  k = mesh.devices.size
  count = min(n * per, 1024)
  repl = parallel.replicated(mesh)
  logs.phase(f"judging {count} training-size samples of the model and of the untrained model")
  for name, params in (("model", model.params), ("untrained", fresh)):
    x = scorer.sample_batches(sample, jax.device_put(params, repl), jax.random.PRNGKey(EVAL_SEED), count, 64 * k)
    lab, hgt = scene_metrics.scene_maps(model.layout.decode(x), world)
    out[name]["sample_validity"] = float(scene_metrics.per_scene(world, lab, hgt)[0].all(1).mean())
  out["real"]["sample_validity"] = out["real"]["crop_validity"]
  return out


ROW_KEEP = ("validity", "crop_validity", "sample_validity", "crop_fd", "crop_c2st_pixels", "seam")


def result_rows(scores: dict, config: str, command: str) -> list[dict]:
  """One row per set of an ``evaluate`` result, for ``results/large_scenes.json`` (``tools/large_scenes.py``)."""
  h, w = scores["scene_size"]
  rows = []
  for name in ("model", "untrained", "real"):
    s = scores[name]
    row = {
      "config": "real" if name == "real" else config,
      "world": scores["world"],
      "scene_size": f"{h}x{w}",
      "set": name,
      "num_scenes": scores["num_scenes"],
      "checkpoint_step": None if name == "real" else scores["checkpoint_step"],
      "coarse_fd": s.get("coarse_fd"),
      "coarse_kid": s.get("coarse_kid"),
      "coarse_c2st": s.get("coarse_c2st"),
    }
    row.update({k: v for k, v in s.items() if k.startswith("ms/")})
    row.update({k: s.get(k) for k in ROW_KEEP})
    row["command"] = command
    rows.append(row)
  return rows


def merge_rows(path: str, new: list[dict]) -> list[dict]:
  """The file's rows with those of the same (config, world, scene_size, set, num_scenes) replaced by ``new``.

  Real regions are drawn from fixed seeds, so the real rows of two models of one world and size are the same
  rows (one kept).
  """
  old = json.load(open(path)) if os.path.exists(path) else []
  key = lambda r: (r["config"], r["world"], r["scene_size"], r["set"], r["num_scenes"])  # noqa: E731
  replaced = {key(r) for r in new}
  rows = [r for r in old if key(r) not in replaced] + new
  with open(path + ".tmp", "w") as f:
    json.dump(rows, f, indent=1)
  os.replace(path + ".tmp", path)
  return rows
