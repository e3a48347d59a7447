"""Run outputs: JSON-lines metrics, TensorBoard events, sample-grid PNGs."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image


class MetricWriter:
  """Appends ``{'step': s, ...}`` lines to ``metrics.jsonl`` and TensorBoard scalars.

  On resume from step ``s``, records after ``s`` (written by the interrupted
  run after its last checkpoint) are dropped, so each step is logged once.
  """

  def __init__(self, workdir: str, resume_step: int, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if not enabled:
      return
    if os.path.exists(self.path):
      with open(self.path) as f:
        keep = [ln for ln in f if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
      tmp = self.path + ".tmp"
      with open(tmp, "w") as f:
        f.writelines(keep)
      os.replace(tmp, self.path)
    from tensorboardX import SummaryWriter  # Writes event files without TensorFlow.

    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1 if resume_step else None)

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    clean = {k: float(v) for k, v in metrics.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **clean}) + "\n")
    for k, v in clean.items():
      self._tb.add_scalar(k, v, step)
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def scene_tiles(decoded: dict[str, np.ndarray], palette: np.ndarray) -> np.ndarray:
  """[n, h, w*k, 3]: RGB render, label map and height side by side for each scene."""
  parts = []
  if "rgb" in decoded:
    parts.append(decoded["rgb"])
  if "labels" in decoded:
    parts.append(palette[np.clip(decoded["labels"], 0, len(palette) - 1)])
  if "height" in decoded:
    h = (decoded["height"] * 255).astype(np.uint8)
    parts.append(np.repeat(h[..., None], 3, -1))
  return np.concatenate(parts, axis=2)


def save_grid(path: str, tiles: np.ndarray, cols: int, pad: int = 2) -> None:
  """Writes [n, h, w, 3] uint8 tiles as one PNG grid (atomically)."""
  n, h, w, _ = tiles.shape
  rows = -(-n // cols)
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
  for i in range(n):
    r, c = divmod(i, cols)
    grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tiles[i]
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.png"
  Image.fromarray(grid).save(tmp)
  os.replace(tmp, path)
