"""Helpers for configs: variant arguments and checks that run before compiling."""

from __future__ import annotations

import ml_collections

VARIANTS = ("smoke", "cpu", "full")


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
  chans = tuple(d.channels)
  if not chans or chans[0] != "rgb" or len(set(chans)) != len(chans) or not set(chans) <= {"rgb", "labels", "height"}:
    raise ValueError(f"data.channels={chans}: must start with 'rgb', optionally followed by 'labels' and/or 'height'")
  if d.source != "world" and len(chans) > 1:
    raise ValueError(f"data.channels={chans}: data.source={d.source!r} has RGB only; use ('rgb',)")
  for key in ("batch_size", "num_steps", "log_every", "eval_every", "ckpt_every", "keep_checkpoints"):
    v = t[key]
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"train.{key}={v!r}: must be a positive integer")
  if t.eval_samples < 2:
    raise ValueError(f"train.eval_samples={t.eval_samples}: must be at least 2")


def load_config(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
  """Loads ``path.py[:arg]`` and applies ``a.b=value`` overrides (for scripts and tests).

  Values are parsed as Python literals where possible; an unknown key names
  the keys that exist.
  """
  import ast
  import importlib.util
  import os

  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path!r}: not found")
  mod_spec = importlib.util.spec_from_file_location("_genenv_config", path)
  mod = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(mod)
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
