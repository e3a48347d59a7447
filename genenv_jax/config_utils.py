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
    raise ValueError(
        f"data.channels={chans}: must start with 'rgb', optionally followed by 'labels' and/or 'height'"
    )
  if d.source != "world" and len(chans) > 1:
    raise ValueError(f"data.channels={chans}: data.source={d.source!r} has RGB only; use ('rgb',)")
  for key in ("batch_size", "num_steps", "log_every", "eval_every", "ckpt_every", "keep_checkpoints"):
    v = t[key]
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"train.{key}={v!r}: must be a positive integer")
  if t.eval_samples < 2:
    raise ValueError(f"train.eval_samples={t.eval_samples}: must be at least 2")
