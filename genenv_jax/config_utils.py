"""Helpers for configs: variant arguments and checks that run before compiling."""

from __future__ import annotations

import os

import ml_collections

from genenv_jax import cpu_kernels, layout, paths

VARIANTS = ("smoke", "cpu", "full")


def in_unit_interval(name: str, value, meaning: str) -> float:
  """``value`` as a float when it is a number in (0, 1], else a ValueError naming ``name``, the range and
  ``meaning`` (what the number does)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
    raise ValueError(f"{name}={value!r}: must be a number in (0, 1] ({meaning})")
  return float(value)


def parse_arg(arg: str | None) -> set[str]:
  """``'smoke'`` / ``'cpu'`` / ``None`` -> set of variant words; unknown words are an error."""
  words = {w.strip() for w in (arg or "").split(",") if w.strip()}
  unknown = words - set(VARIANTS)
  if unknown:
    raise ValueError(f"config argument {arg!r}: unknown variant(s) {sorted(unknown)}; allowed: {list(VARIANTS)}")
  return words


def validate(config: ml_collections.ConfigDict) -> None:
  """Generic checks of a training config; families check their own sections."""
  d, t = config.data, config.train
  if d.source not in ("world", "folder", "tfds"):
    raise ValueError(f"data.source={d.source!r}: must be one of 'world', 'folder', 'tfds'")
  if not isinstance(d.image_size, int) or d.image_size < 8 or d.image_size % 8:
    raise ValueError(f"data.image_size={d.image_size!r}: must be a multiple of 8 and at least 8 (e.g. 32, 64, 128)")
  chans = layout.check_channels(d.channels)
  if d.source == "world":
    for key in ("num_train", "num_test"):
      v = d[key]
      if not isinstance(v, int) or v < 8:
        raise ValueError(f"data.{key}={v!r}: must be an integer >= 8 (evaluation compares at least 8 scenes)")
  if d.source == "tfds" and len(chans) > 1:
    raise ValueError(
      f"data.channels={chans}: data.source={d.source!r} holds images only; use ('rgb',) or ('gray',) (one 8-bit "
      "channel, for gray images)"
    )
  if d.source != "folder" and chans == layout.HEIGHT_ONLY:
    raise ValueError(f"data.channels={chans}: heights alone are for one elevation model file (data.source='folder')")
  if d.source == "world" and chans[0] == "gray":
    raise ValueError(f"data.channels={chans}: the built-in worlds draw RGB; 'gray' is for folders and TFDS datasets")
  if d.source == "folder":
    if not d.get("path"):
      raise ValueError("data.path='': data.source='folder' needs the folder of images (--config.data.path=DIR)")
    from genenv_jax.data import dem

    if dem.is_elevation_file(d.path):
      dem.check(d)
    elif chans == layout.HEIGHT_ONLY:
      raise ValueError(
        f"data.channels={chans}: heights alone come from one elevation model file (data.path=FILE.tif|.npy|.png); "
        f"data.path={d.path!r} is not one"
      )
    f = d.get("test_fraction", 0.0)
    if not isinstance(f, (int, float)) or not 0.0 <= f < 1.0:
      raise ValueError(f"data.test_fraction={f!r}: must be in [0, 1) (the share of images held out, e.g. 0.1)")
    if f == 0.0 and not d.get("test_path"):
      raise ValueError(
        "data.test_fraction=0.0 with no data.test_path: evaluation would score the training images against "
        "themselves; hold out a share (e.g. 0.1) or give data.test_path=DIR"
      )
  for key in ("batch_size", "num_steps", "log_every", "eval_every", "ckpt_every", "keep_checkpoints"):
    v = t[key]
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"train.{key}={v!r}: must be a positive integer")
  if t.eval_samples < 2:
    raise ValueError(f"train.eval_samples={t.eval_samples}: must be at least 2")
  fnet = t.get("feature_net", "default")
  if fnet not in ("default", "none") and not os.path.isfile(fnet):
    raise ValueError(f"train.feature_net={fnet!r}: must be 'default', 'none' or the path of a feature-net .npz")
  if t.get("precision", "float32") not in PRECISIONS:
    raise ValueError(f"train.precision={t.precision!r}: must be one of {list(PRECISIONS)}")
  cpu_kernels.validate(t.get("cpu_convolutions", "xla"), auto=True)
  if fnet != "none" and t.eval_samples < 8:
    raise ValueError(
      f"train.eval_samples={t.eval_samples}: FD/KID/precision-recall need at least 8 (or train.feature_net='none')"
    )


def _load_module(path: str):
  """Executes a config file; a broken one is a ValueError naming the file and line."""
  import importlib.util

  mod_spec = importlib.util.spec_from_file_location("_genenv_config", path)
  mod = importlib.util.module_from_spec(mod_spec)
  try:
    mod_spec.loader.exec_module(mod)
  except SyntaxError as e:
    raise ValueError(f"config file {path!r}: syntax error at line {e.lineno}: {e.msg}") from e
  except ImportError as e:
    raise ValueError(f"config file {path!r}: {e}") from e
  if not callable(getattr(mod, "get_config", None)):
    raise ValueError(f"config file {path!r}: defines no get_config(arg) function")
  return mod


def load_config(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
  """Loads ``path.py[:arg]`` and applies ``a.b=value`` overrides (for scripts and tests).

  Values are parsed as Python literals where possible; an unknown key names
  the keys that exist.
  """
  import ast

  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path!r}: not found")
  mod = _load_module(path)
  config = mod.get_config(arg or None)
  for item in overrides:
    key, _, raw = item.partition("=")
    try:
      value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      value = raw
    node, *_ = key.rsplit(".", 1)
    parent = config
    parts = key.split(".")
    for p in parts[:-1]:
      if p not in parent:
        raise ValueError(f"config override {item!r}: no section {p!r}; sections are {sorted(parent.keys())}")
      parent = parent[p]
    if parts[-1] not in parent:
      raise ValueError(f"config override {item!r}: no key {parts[-1]!r}; keys are {sorted(parent.keys())}")
    if isinstance(parent[parts[-1]], float) and isinstance(value, int):
      value = float(value)
    parent[parts[-1]] = value
  return config


def data_config(world: str, image_size: int, num_train: int, num_test: int, channels) -> ml_collections.ConfigDict:
  """The ``data`` section shared by every config (built-in world by default)."""
  d = ml_collections.ConfigDict()
  d.source = "world"  # 'world' | 'folder' | 'tfds'
  d.world = world
  d.image_size = image_size
  d.num_train = num_train
  d.num_test = num_test
  d.data_dir = paths.data_dir()  # ~/tensorflow_datasets, or $GENENV_HOME/tensorflow_datasets
  d.channels = tuple(channels)
  d.conditional = False  # condition on the world's scene class
  d.path = ""  # data.source='folder': a folder of images (subfolders are classes)
  d.test_fraction = 0.1  # folder: share of the images held out for evaluation, chosen by a hash of the path
  d.test_path = ""  # folder: a separate folder of held-out images (overrides test_fraction)
  d.metres_per_pixel = 0.0  # folder with heights in metres: their ground resolution, for exports (0: 1 m)
  d.window = 0  # data.path=one DEM file: training window in DEM pixels (0: data.image_size)
  d.stride = 0  # data.path=one DEM file: pixels between windows (0: a quarter window)
  d.name = ""  # data.source='tfds': a TFDS catalog name, prepared offline
  d.train_split = "train"
  d.test_split = "test"
  d.image_key = "image"
  d.label_key = "label"
  return d


def fm_config(widths, attention: bool = False) -> ml_collections.ConfigDict:
  """The ``fm`` section of a flow-matching config (``genenv_jax.families.flow_matching``)."""
  f = ml_collections.ConfigDict()
  f.widths = tuple(widths)  # U-Net features per resolution, finest first (2x pooling between)
  f.blocks = 1  # residual blocks per resolution on the way down
  f.attention = attention  # self-attention at the lowest resolution (not with tiled large scenes)
  f.time_sampling = "uniform"  # 'uniform' | 'logit_normal' (training times)
  f.ema_decay = 0.999
  f.solver = "midpoint"  # sampling: 'euler' | 'midpoint' | 'heun' | 'adaptive' (diffrax Tsit5)
  f.sample_steps = 16  # fixed-step solvers: steps (midpoint and heun evaluate the network twice per step)
  f.likelihood_steps = 32  # midpoint steps of the bits/dim ODE
  return f


def optim_config(lr: float, b1: float, b2: float, warmup_steps: int, clip_norm: float) -> ml_collections.ConfigDict:
  o = ml_collections.ConfigDict()
  o.lr = lr
  o.b1 = b1
  o.b2 = b2
  o.warmup_steps = warmup_steps
  o.schedule = "constant"  # 'constant' | 'cosine'
  o.clip_norm = clip_norm
  return o


PRECISIONS = ("float32", "bfloat16")


def train_config(batch_size: int, num_steps: int, every: int, eval_samples: int) -> ml_collections.ConfigDict:
  """The ``train`` section: log every every/25 steps, evaluate and checkpoint every ``every``."""
  t = ml_collections.ConfigDict()
  t.batch_size = batch_size
  t.num_steps = num_steps
  t.log_every = max(1, every // 25)
  t.eval_every = every
  t.ckpt_every = every
  t.keep_checkpoints = 3
  t.eval_samples = eval_samples
  t.grid_size = 8
  t.max_nonfinite = 20  # stop after this many skipped non-finite steps
  t.feature_net = "default"  # FD/KID/precision-recall features: 'default' (shipped), 'none' or a .npz path
  # 'float32': parameters and activations in float32 (convolutions at the backend's default precision:
  # TF32 on recent NVIDIA GPUs). 'bfloat16' (opt-in, the GAN family): activations and convolution inputs in
  # bfloat16, parameters, optimiser state, losses and R1 in float32.
  t.precision = "float32"
  # 'xla': XLA:CPU's default convolution kernels (YNNPACK, one thread each). 'eigen': Eigen's
  # multi-threaded convolutions for the train step, 13-31% faster steps on a 2-core CPU (docs/benchmarks.md,
  # "What made it faster"); equal up to float rounding. 'auto' (default): 'eigen' for a new run on a
  # CPU, and on resume what the run recorded (runs from before this default: 'xla'); run.json records
  # the resolved choice. Accelerators ignore it.
  t.cpu_convolutions = "auto"
  return t


def smoke(c: ml_collections.ConfigDict) -> None:
  """Shrinks a config to seconds: 16 px, 6 steps of batch 8, tiny data."""
  c.data.image_size = 16
  c.data.num_train = 256
  c.data.num_test = 64
  c.train.batch_size = 8
  c.train.num_steps = 6
  c.train.log_every = 2
  c.train.eval_every = 6
  c.train.ckpt_every = 3
  c.train.eval_samples = 16
  c.train.grid_size = 4


def check_override_flags(argv: list[str]) -> str | None:
  """Checks ``--config.a.b=v`` flags against the config file before absl parses them.

  absl's config flags raise a bare AttributeError traceback for an unknown
  key; this returns a message naming the key and the keys that exist instead
  (or None when every override names an existing key).
  """
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if spec is None:
    return None
  try:
    config = load_config(spec)
  except (FileNotFoundError, ValueError) as e:
    return str(e)
  for a in argv:
    if not a.startswith("--config."):
      continue
    key = a[len("--config.") :].split("=", 1)[0]
    node = config
    parts = key.split(".")
    for i, p in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or p not in node:
        where = ".".join(parts[:i]) or "the config"
        keys = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        return f"--config.{key}: {where} has no key {p!r}; keys there are {keys}"
      node = node[p]
    if "=" in a:
      problem = _type_problem(f"--config.{key}", a.split("=", 1)[1], node)
      if problem:
        return problem
  return None


_TYPE_WORDS = {bool: "True or False", int: "an integer", float: "a number", tuple: "a tuple, e.g. (1, 2)"}


def _type_problem(name: str, raw: str, default) -> str | None:
  """A line naming an override whose value cannot take the type of the config's value (None when it can)."""
  import ast

  kind = type(default)
  if kind not in _TYPE_WORDS or default is None:
    return None
  if kind is bool:
    ok = raw.lower() in ("true", "false", "1", "0")
  else:
    try:
      v = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      v = raw
    ok = isinstance(v, kind) and not isinstance(v, bool) or (kind is float and isinstance(v, int))
    ok = ok or (kind is tuple and isinstance(v, (tuple, list)))
  if ok:
    return None
  return f"{name}={raw!r}: must be {_TYPE_WORDS[kind]} (the config's value is {default!r})"
