"""The run directory that ``train.py`` writes and ``sample.py``, ``eval.py`` and the tools read.

Layout::

  WORKDIR/
    run.json           the config, the data layout and the run's identity (this module)
    checkpoints/N/     Orbax steps (genenv_jax.checkpoint)
    metrics.jsonl      one JSON line per logged step (genenv_jax.logs)
    tensorboard/       event files
    samples/           step_NNNNNNN.png grids, latest.png
    eval.json          the newest in-loop evaluation
    eval_results.json  eval.py's scores; eval/ its picture grids
    eval_results_scene-HxW.json  eval.py --scene_size=HxW's large-scene scores
    .lock              held while a training runs in it

Nothing else in the library spells these names.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
from typing import NamedTuple

import ml_collections
import numpy as np

from genenv_jax.families import base

RUN_FILE = "run.json"

# Config keys that may change between runs of one workdir: they steer how far
# and how often, not what is computed. Everything else is the run's identity.
RESUMABLE_KEYS = (
  "train.num_steps",
  "train.log_every",
  "train.eval_every",
  "train.ckpt_every",
  "train.keep_checkpoints",
  "train.eval_samples",
  "train.grid_size",
  "train.max_nonfinite",
  "train.feature_net",
  "mesh.num_devices",
  "data.data_dir",
)


def _finite(v):
  """Non-finite floats become ``null`` (strict JSON has no NaN)."""
  if isinstance(v, float) and not math.isfinite(v):
    return None
  if isinstance(v, dict):
    return {k: _finite(x) for k, x in v.items()}
  if isinstance(v, (list, tuple)):
    return [_finite(x) for x in v]
  return v


def write_json(path: str, record: dict) -> None:
  """Writes ``record`` atomically (a temporary file renamed into place), as strict JSON (NaN -> null)."""
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, "w") as f:
      json.dump(_finite(record), f, indent=1, sort_keys=True, allow_nan=False)
    os.replace(tmp, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from e


def read_json(path: str) -> dict:
  """Reads a JSON file; a damaged one is an error naming the file."""
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e}); the file is damaged") from e


class RunInfo(NamedTuple):
  config: ml_collections.ConfigDict
  spec: base.DataSpec
  class_names: tuple[str, ...]  # the label map's classes ('labels' channel), empty if none
  scene_classes: tuple[str, ...] = ()  # the conditioning classes of a conditional model, empty if none


# Config keys added after runs were written: the value an older run.json
# without the key effectively had, given (their config, this config).
LEGACY_DEFAULTS = {
  "model.upsample_init": lambda theirs, mine: "lecun",
  "model.upsample": lambda theirs, mine: "shuffle",
  # Folder runs before the held-out split trained on every image; elsewhere the key has no effect.
  "data.test_fraction": lambda theirs, mine: 0.0 if theirs["data"]["source"] == "folder" or mine is None else mine,
  "data.test_path": lambda theirs, mine: "",
  "data.metres_per_pixel": lambda theirs, mine: 0.0,
  "data.window": lambda theirs, mine: 0,
  "data.stride": lambda theirs, mine: 0,
  # VAEs before the learned latent prior sampled from the Gaussian prior.
  "vae.prior": lambda theirs, mine: "gaussian",
  "vae.prior_widths": lambda theirs, mine: mine,
  "vae.prior_steps": lambda theirs, mine: mine,
  "model.chunks": lambda theirs, mine: 1,
  "vae.chunks": lambda theirs, mine: 1,
  "flow.conv1x1_as_dot": lambda theirs, mine: False,
  "train.cpu_convolutions": lambda theirs, mine: "xla",
  # Runs before the precision option computed in float32.
  "train.precision": lambda theirs, mine: "float32",
  # Two-level runs before training phases trained both levels in every step: any fine_steps that covers
  # their planned steps (0, or at least train.num_steps) continues them as planned.
  "hier.fine_steps": lambda theirs, mine: mine if mine and mine >= theirs["train"]["num_steps"] else 0,
  # Two-level runs before the optional top level had none.
  "hier.top_factor": lambda theirs, mine: 0,
  "hier.top_num_train": lambda theirs, mine: mine,
  "hier.top_num_test": lambda theirs, mine: mine,
  # Hierarchical runs before these options: plain block means, noise per pixel only.
  "hier.share_power": lambda theirs, mine: 1.0,
  "hier.cond_noise_blocks": lambda theirs, mine: 0.0,
  "hier.fine_temperature": lambda theirs, mine: 1.0,
  "hier.upper_temperature": lambda theirs, mine: 1.0,
  "hier.top_temperature": lambda theirs, mine: 1.0,
  "hier.top_trace": lambda theirs, mine: "",
  "hier.coarse_field": lambda theirs, mine: "",
  "hier.river_share": lambda theirs, mine: 0.5,
  "hier.min_water_blocks": lambda theirs, mine: 0,
  # Hierarchical runs before the coarse level's own window: the training size (0).
  "hier.coarse_window": lambda theirs, mine: 0,
  # Three-level runs before the top level's own widths: the coarse level's (()).
  "hier.top_widths": lambda theirs, mine: [],
}


def with_legacy_defaults(theirs: dict, mine: dict | None = None) -> dict:
  """``theirs`` (a stored config) with the keys it predates filled in (see ``LEGACY_DEFAULTS``)."""
  theirs = json.loads(json.dumps(theirs))
  for key, legacy in LEGACY_DEFAULTS.items():
    section, _, name = key.partition(".")
    mine_section = (mine or {}).get(section, {})
    if section in theirs and name not in theirs[section] and (mine is None or name in mine_section):
      theirs[section][name] = legacy(theirs, mine_section.get(name))
  return theirs


def config_dict(config) -> dict:
  return json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") else dict(config)


def identity(config) -> dict:
  """The parts of a config that make a run what it is (``RESUMABLE_KEYS`` removed)."""
  d = config_dict(config)
  for key in RESUMABLE_KEYS:
    section, _, name = key.partition(".")
    d.get(section, {}).pop(name, None)
  return d


def fingerprint(config) -> str:
  return hashlib.sha256(json.dumps(identity(config), sort_keys=True).encode()).hexdigest()[:16]


def _flat(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def differences(a: dict, b: dict) -> dict[str, tuple]:
  """{dotted key: (a's value, b's value)} where two config dicts differ."""
  fa, fb = _flat(a), _flat(b)
  return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}


class Workdir:
  """Paths of one run directory, and its ``run.json``."""

  def __init__(self, path: str):
    if not path:
      raise ValueError("workdir='': give a folder for the run")
    self.path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise ValueError(f"workdir={path!r}: is a file, not a folder")

  def __str__(self):
    return self.path

  def join(self, *parts: str) -> str:
    return os.path.join(self.path, *parts)

  run_json = property(lambda self: self.join(RUN_FILE))
  checkpoints = property(lambda self: self.join("checkpoints"))
  metrics = property(lambda self: self.join("metrics.jsonl"))
  tensorboard = property(lambda self: self.join("tensorboard"))
  samples = property(lambda self: self.join("samples"))
  eval_json = property(lambda self: self.join("eval.json"))
  eval_results = property(lambda self: self.join("eval_results.json"))

  def large_eval_results(self, height: int, width: int) -> str:
    """eval.py --scene_size=HxW's scores."""
    return self.join(f"eval_results_scene-{height}x{width}.json")

  eval_dir = property(lambda self: self.join("eval"))
  lock_file = property(lambda self: self.join(".lock"))

  def sample_grid(self, step: int | None) -> str:
    """``samples/step_NNNNNNN.png`` (or ``samples/latest.png`` for ``None``)."""
    return os.path.join(self.samples, "latest.png" if step is None else f"step_{step:07d}.png")

  def create(self) -> None:
    """Creates the folder, or says in one line why it cannot be written."""
    try:
      os.makedirs(self.path, exist_ok=True)
      probe = self.join(f".write-probe-{os.getpid()}")
      with open(probe, "w") as f:
        f.write("ok")
      os.remove(probe)
    except OSError as e:
      raise OSError(e.errno, f"workdir={self.path!r}: cannot write there ({e.strerror})") from e

  def has_run(self) -> bool:
    return os.path.isfile(self.run_json)

  def write_run(
    self,
    config,
    spec: base.DataSpec,
    class_names=(),
    scene_classes=(),
    palette=None,
    height_range_m=None,
    metres_per_pixel=None,
  ) -> None:
    """Writes ``run.json``: the config, the data spec and the run's fingerprint (sample.py needs no dataset)."""
    write_json(
      self.run_json,
      {
        "config": config_dict(config),
        "spec": spec._asdict(),
        "class_names": list(class_names),
        "scene_classes": list(scene_classes),
        "palette": [] if palette is None else np.asarray(palette).tolist(),
        "height_range_m": None if height_range_m is None else [float(v) for v in height_range_m],
        "metres_per_pixel": metres_per_pixel,  # read from the data (GeoTIFF pixel size), else null
        "fingerprint": fingerprint(config),
      },
    )

  def read_raw(self) -> dict:
    if not self.has_run():
      raise FileNotFoundError(f"workdir={self.path!r}: no {RUN_FILE}; is this a train.py workdir?")
    return read_json(self.run_json)

  def read_run(self) -> RunInfo:
    """``run.json`` back as (config, DataSpec, class names)."""
    info = self.read_raw()
    config = ml_collections.ConfigDict(with_legacy_defaults(info["config"]))
    spec = dict(info["spec"])
    spec["one_hot"] = tuple(spec["one_hot"])
    if not config.data.get("conditional", False):
      spec["num_classes"] = 1  # run.json files before round 2 held the source's class count here
    spec = {k: v for k, v in spec.items() if k in base.DataSpec._fields}
    class_names = tuple(info.get("class_names", ()))
    if not class_names and config.data.source == "world" and "labels" in config.data.channels:
      from genenv_jax.scenes import get_world

      class_names = tuple(get_world(config.data.world).class_names)
    scene_classes = tuple(info.get("scene_classes", ()))
    if not scene_classes and spec["num_classes"] > 1 and config.data.source == "world":
      from genenv_jax.scenes import get_world

      scene_classes = tuple(get_world(config.data.world).scene_class_names)
    return RunInfo(config, base.DataSpec(**spec), class_names, scene_classes)

  def check_same_run(self, config) -> list[str]:
    """Refuses a config that is not this workdir's run; returns the resumable keys that changed."""
    if not self.has_run():
      return []
    mine = config_dict(config)
    theirs = with_legacy_defaults(self.read_raw()["config"], mine)
    diff = differences(identity(theirs), identity(mine))
    if diff and _describe(theirs) != _describe(mine):
      diff = {"family, data": (_describe(theirs), _describe(mine))}
    if diff:
      listed = "; ".join(f"{k}: {a!r} here vs {b!r} requested" for k, (a, b) in list(diff.items())[:8])
      more = f" (and {len(diff) - 8} more)" if len(diff) > 8 else ""
      raise ValueError(
        f"workdir={self.path!r} holds another run: {listed}{more}. "
        "Use a new --workdir, or --overwrite to delete this one. "
        f"Keys that may change on resume: {', '.join(RESUMABLE_KEYS)}"
      )
    return [k for k in differences(theirs, mine)]

  @contextlib.contextmanager
  def lock(self):
    """Held while a training runs here: a second training of the same workdir is refused."""
    import fcntl

    f = open(self.lock_file, "a+")
    try:
      try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
          raise ValueError(f"workdir={self.path!r}: another training is running in it (lock {self.lock_file})")
        raise
      f.seek(0)
      f.truncate()
      f.write(str(os.getpid()))
      f.flush()
      yield
    finally:
      f.close()


def _describe(config: dict) -> str:
  data = config.get("data", {})
  what = data.get("world") if data.get("source") == "world" else data.get("source")
  return f"family {config.get('family')!r} on {what!r}"
