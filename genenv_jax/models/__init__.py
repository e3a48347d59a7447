"""Pretrained models shipped with the package: sample, export or score one without training.

  python -m genenv_jax.models                      # one line per model, the name first
  python sample.py --model=fm_dungeon --output=out/levels --num_samples=64
  python sample.py --model=fm_dungeon --output=out/level_unity --scene_size=257x257 --export=unity,tiled

Each model is two files in ``genenv_jax/models/weights/``: ``NAME.npz`` (the
EMA parameters that sample, float32, one array per parameter path) and
``NAME.json``, its card: the run's config and data layout, the command that
trained it, the step, its results row (``results/*.json``: validity beside
real and untrained, FD, KID, ...) and the sha256 of the weights file, checked
on every load (a damaged file is refused by name). ``tools/ship_model.py``
writes both from a trained workdir.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")


def _card_path(name: str) -> str:
  return os.path.join(WEIGHTS_DIR, f"{name}.json")


def names() -> list[str]:
  """The shipped models, sorted."""
  if not os.path.isdir(WEIGHTS_DIR):
    return []
  return sorted(f[: -len(".json")] for f in os.listdir(WEIGHTS_DIR) if f.endswith(".json"))


def card(name: str) -> dict:
  """A model's card; an unknown name is an error listing the shipped ones."""
  if name not in names():
    raise ValueError(f"model={name!r}: not a shipped model; shipped: {names()} (python -m genenv_jax.models)")
  with open(_card_path(name)) as f:
    return json.load(f)


def _sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


def _key(path) -> str:
  return "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)


def arrays_of(params) -> dict[str, np.ndarray]:
  """A parameter tree as the flat ``{'a/b/c': float32 array}`` dict a weights file holds."""
  import jax

  flat, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(params))
  return {_key(p): np.asarray(v, np.float32) for p, v in flat}


CONFIG_KEY = "__config__"  # in a ``weights`` file: the config keys it was trained with, where they differ


def load(name: str, weights: str | None = None):
  """The shipped model ``name`` as a ``trained.Trained`` (what ``sample.py`` and ``eval.py`` take).

  ``weights``: another ``.npz`` of the same network (``arrays_of``; e.g. ``tools/coarse_more_steps.py``'s)
  used instead of the shipped file (its sha256 is not checked: it is not the card's). Where it holds a
  ``CONFIG_KEY`` entry (a JSON object of dotted config keys, e.g. ``{"hier.top_trace": "water"}``: an
  experiment whose network differs from the card's), those keys are set in the card's config first."""
  import jax
  import ml_collections

  from genenv_jax import families, parallel, trained
  from genenv_jax import layout as layout_lib
  from genenv_jax import workdir as workdir_lib
  from genenv_jax.families import base
  from genenv_jax.scenes import get_world

  c = card(name)
  shipped = weights is None
  if not shipped and not os.path.isfile(weights):
    raise ValueError(f"weights={weights!r}: no such file")
  weights = os.path.join(WEIGHTS_DIR, c["weights"]) if shipped else weights
  if not os.path.isfile(weights):
    raise ValueError(f"model={name!r}: its weights file {weights} is missing; reinstall the package")
  got = _sha256(weights) if shipped else c["sha256"]
  if got != c["sha256"]:
    raise ValueError(
      f"model={name!r}: {weights} is damaged (sha256 {got[:12]}..., its card says {c['sha256'][:12]}...); "
      "reinstall the package"
    )
  with np.load(weights) as z:
    stored = {k: z[k] for k in z.files}
  raw = workdir_lib.with_legacy_defaults(c["config"])
  if not shipped and CONFIG_KEY in stored:
    for key, value in json.loads(str(stored.pop(CONFIG_KEY))).items():
      section, _, field = key.partition(".")
      if section not in raw or field not in raw[section]:
        raise ValueError(f"weights={weights!r}: sets {key!r}, which {name}'s config has no key for")
      raw[section][field] = value
  config = ml_collections.ConfigDict(raw)
  spec = dict(c["spec"])
  spec["one_hot"] = tuple(spec["one_hot"])
  spec = base.DataSpec(**{k: v for k, v in spec.items() if k in base.DataSpec._fields})
  family = families.make(config, spec)
  batch = {
    "x": np.zeros((2, spec.image_size, spec.image_size, spec.channels), np.float32),
    "label": np.zeros((2,), np.int32),
  }
  abstract = jax.eval_shape(family.init, jax.random.PRNGKey(0), batch).ema_params
  flat, treedef = jax.tree_util.tree_flatten_with_path(abstract)
  leaves = []
  for path, leaf in flat:
    k = _key(path)
    if k not in stored or stored[k].shape != leaf.shape:
      fix = "reinstall the package" if shipped else f"{weights} is not {name}'s network"
      raise ValueError(f"model={name!r}: weights do not fit the card's network at {k!r}; {fix}")
    leaves.append(stored[k].astype(leaf.dtype))
  repl = parallel.replicated(parallel.local_mesh())
  params = jax.device_put(jax.tree_util.tree_unflatten(treedef, leaves), repl)
  world = get_world(config.data.world) if config.data.source == "world" else None
  class_names = tuple(c.get("class_names", ()))
  layout = layout_lib.Layout(
    tuple(config.data.channels), class_names, world.palette if world else layout_lib.NO_PALETTE
  )
  wd = workdir_lib.Workdir(os.path.join(WEIGHTS_DIR, name))  # names the source; nothing is written there
  return trained.Trained(
    config, spec, family, params, int(c["step"]), world, wd, layout, None, tuple(c.get("scene_classes", ()))
  )


def ship(workdir: str, name: str, results_json: str | None, out_dir: str = WEIGHTS_DIR) -> dict:
  """Writes ``NAME.npz`` (EMA parameters, float32) and ``NAME.json`` (the card) from a trained workdir."""
  from genenv_jax import trained
  from genenv_jax import workdir as workdir_lib

  model = trained.load(workdir)
  raw = workdir_lib.Workdir(workdir).read_raw()
  arrays = arrays_of(model.params)
  os.makedirs(out_dir, exist_ok=True)
  weights = os.path.join(out_dir, f"{name}.npz")
  tmp = weights + ".tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, weights)
  row = None
  if results_json:
    with open(results_json) as f:
      r = json.load(f)
    keep = ("validity", "fd", "kid", "precision", "recall", "c2st/pixels", "stats_distance")
    row = {
      "file": f"results/{os.path.basename(results_json)}",
      "command": r.get("command"),
      **{col: {k: r[col][k] for k in keep if k in r[col]} for col in ("model", "real", "untrained")},
    }
    if "render_finished" in r:  # the levels' finishing pass (sample.py --render=finished)
      f = r["render_finished"]
      row["finished"] = {
        "command": f["eval_command"],
        **{col: {k: f[col][k] for k in (*keep, "finish_changed") if k in f[col]} for col in ("model", "untrained")},
      }
  c = {
    "name": name,
    "weights": os.path.basename(weights),
    "sha256": _sha256(weights),
    "dtype": "float32",
    "num_params": int(sum(a.size for a in arrays.values())),
    "family": raw["config"]["family"],
    "world": raw["config"]["data"].get("world") if raw["config"]["data"]["source"] == "world" else "user data",
    "image_size": raw["config"]["data"]["image_size"],
    "step": model.step,
    "config": raw["config"],
    "spec": raw["spec"],
    "class_names": raw.get("class_names", []),
    "scene_classes": raw.get("scene_classes", []),
    "train_command": (row or {}).get("command"),
    "results": row,
  }
  with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
    json.dump(c, f, indent=1, sort_keys=True)
  return c


LARGE_KEYS = (
  "validity",
  "crop_validity",
  "coarse_fd",
  "coarse_c2st",
  "ms/largest_water_share",
  "ms/largest_water_share/value",
  "ms/water_log_areas_w1",
)


def large_row(results_json: str, command: str) -> dict:
  """The card's row from ``results/large_scenes.json`` (whole scenes): the sets its ``command`` wrote, and the real
  set of its world, size and scene count, which every command scoring those shares (``tools/large_scenes.py``
  keeps one real row per world, size and count, recording the last command that drew it)."""
  with open(results_json) as f:
    every = json.load(f)
  rows = [r for r in every if r["command"] == command]
  if not rows:
    raise ValueError(f"{results_json}: no rows with the command {command!r}")
  if all(r["set"] != "real" for r in rows):
    key = lambda r: (r["world"], r["scene_size"], r["num_scenes"])  # noqa: E731
    rows += [r for r in every if r["set"] == "real" and key(r) == key(rows[0])]
  row = {"file": f"results/{os.path.basename(results_json)}", "command": command}
  row.update(scene_size=rows[0]["scene_size"], num_scenes=rows[0]["num_scenes"])
  for r in rows:
    row[r["set"]] = {k: r[k] for k in LARGE_KEYS if k in r}
  return row


def ship_weights(
  base: str,
  weights: str,
  name: str,
  command: str,
  settings: dict | None = None,
  results_json: str | None = None,
  results_command: str | None = None,
  out_dir: str = WEIGHTS_DIR,
) -> dict:
  """Ships another parameter file of shipped model ``base``'s network as model ``name`` (``NAME.npz`` and
  ``NAME.json``): e.g. a coarse level trained apart (``tools/coarse_field.py --model_weights``). Its card is
  ``base``'s with the file's ``CONFIG_KEY`` keys and ``settings`` (sampling keys, e.g.
  ``{"hier.fine_temperature": 0.6}``) set in the config, ``command`` the commands that made the file, and no
  results row but its whole-scene rows (``large_row`` of ``results_json``, ``results/large_scenes.json``, whose
  ``results_command`` drew them)."""
  load(base, weights=weights)  # the file fits the network its keys make
  c = card(base)
  with np.load(weights) as z:
    stored = {k: z[k] for k in z.files}
  from genenv_jax import workdir as workdir_lib

  keys = {**json.loads(str(stored.pop(CONFIG_KEY, "{}"))), **(settings or {})}
  config = workdir_lib.with_legacy_defaults(c["config"])
  for key, value in keys.items():
    section, _, field = key.partition(".")
    if section not in config or field not in config[section]:
      raise ValueError(f"{key}={value!r}: {base}'s config has no such key")
    config[section][field] = value
  path = os.path.join(out_dir, f"{name}.npz")
  np.savez_compressed(path + ".tmp.npz", **stored)
  os.replace(path + ".tmp.npz", path)
  new = {**c, "name": name, "weights": f"{name}.npz", "sha256": _sha256(path), "config": config}
  row = large_row(results_json, results_command) if results_json else None
  new.update(base=base, train_command=command, results=row)
  with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
    json.dump(new, f, indent=1, sort_keys=True)
  return new


def describe(name: str) -> str:
  """One line: the name first, then what it draws and how it measured."""
  c = card(name)
  r = (c.get("results") or {}).get("model", {})
  real = (c.get("results") or {}).get("real", {})
  score = ""
  if (c.get("results") or {}).get("file") == "results/large_scenes.json":  # whole scenes (ship_weights), not windows
    res = c["results"]
    lake, real_lake = r["ms/largest_water_share/value"], real["ms/largest_water_share/value"]
    score = (
      f"whole {res['scene_size']} scenes: coarse FD {r['coarse_fd']:.2f} (real {real['coarse_fd']:.2f}), largest "
      f"water body {lake:.3f} of the scene (real {real_lake:.3f})"
    )
  elif "validity" in r and real.get("validity", 0.0) >= 0.9:
    score = f"validity {r['validity']:.3f} (real {real['validity']:.3f})"
    done = (c["results"].get("finished") or {}).get("model")
    if done:
      score += f", {done['validity']:.3f} with --render=finished ({done['finish_changed']:.1%} of pixels changed)"
  elif "fd" in r:  # no rules to read (e.g. biomes from RGB alone, where real scenes fail them too): FD instead
    score = f"FD {r['fd']:.2f} (real {real.get('fd', float('nan')):.2f})"
  size = os.path.getsize(os.path.join(WEIGHTS_DIR, c["weights"])) / 1e6
  return f"{name}  {c['family']} on {c['world']}, {c['image_size']} px, {c['num_params']:,} params, {size:.1f} MB" + (
    f", {score}" if score else ""
  )
