"""Run outputs: JSON-lines metrics, TensorBoard events, sample-grid PNGs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time

import numpy as np
from PIL import Image


def phase(message: str) -> None:
  """One console line per phase of a command (preparing data, compiling, evaluating, writing)."""
  import jax  # here, so importing logs (and the exporters) stays light

  if jax.process_index() == 0:
    from tqdm import tqdm

    tqdm.write(f"[genenv] {message}", file=sys.stderr)  # on its own line, also under a progress bar


HEARTBEAT_S = 20.0  # seconds between "still ..." lines of a long silent phase


@contextlib.contextmanager
def waiting(message: str):
  """A phase with no progress to show (compiling, a first device call): its line now, then a line every
  ``HEARTBEAT_S`` seconds while it lasts (``still compiling the train step (40 s)``), so no command sits silent."""
  phase(message)
  done = threading.Event()
  start = time.time()

  def beat():
    while not done.wait(HEARTBEAT_S):
      phase(f"still {message} ({time.time() - start:.0f} s)")

  t = threading.Thread(target=beat, daemon=True)
  t.start()
  try:
    yield
  finally:
    done.set()
    t.join()


def progress(iterable, desc: str, total: int | None = None, unit: str = "it"):
  """A progress bar on the lead process (tqdm), for loops of seconds each."""
  import jax
  from tqdm import tqdm

  return tqdm(iterable, desc=desc, total=total, unit=unit, disable=jax.process_index() != 0, dynamic_ncols=True)


class MetricWriter:
  """Appends ``{'step': s, ...}`` lines to ``metrics.jsonl`` and TensorBoard scalars.

  On resume from step ``s``, records after ``s`` (written by the interrupted
  run after its last checkpoint) are dropped, so each step is logged once. A
  torn last line (a kill or a full disk mid-write) is dropped with a warning
  naming the file.
  """

  def __init__(self, wd, resume_step: int, enabled: bool = True):
    self.enabled = enabled
    self.path = wd.metrics
    self._tb = None
    self._evaluated: set[int] = set()
    if not enabled:
      return
    if os.path.exists(self.path):
      keep, torn = [], 0
      with open(self.path) as f:
        for ln in f:
          if not ln.strip():
            continue
          try:
            rec = json.loads(ln)
          except json.JSONDecodeError:
            torn += 1
            continue
          if rec.get("step", 0) <= resume_step:
            keep.append(json.dumps(rec) + "\n")
            if any(k.startswith("eval/") for k in rec):
              self._evaluated.add(rec["step"])
      if torn:
        logging.warning("%s: dropped %d damaged line(s) (an interrupted write)", self.path, torn)
      tmp = self.path + ".tmp"
      with open(tmp, "w") as f:
        f.writelines(keep)
      os.replace(tmp, self.path)
    from tensorboardX import SummaryWriter  # Writes event files without TensorFlow.

    self._tb = SummaryWriter(wd.tensorboard, purge_step=resume_step + 1 if resume_step else None)

  def has_eval(self, step: int) -> bool:
    """Whether ``metrics.jsonl`` already holds the evaluation of ``step``."""
    return step in self._evaluated

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    clean = {k: float(v) for k, v in metrics.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **clean}) + "\n")
    if any(k.startswith("eval/") for k in clean):
      self._evaluated.add(int(step))
    for k, v in clean.items():
      self._tb.add_scalar(k, v, step)
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def save_grid(path: str, tiles: np.ndarray, cols: int, pad: int = 2, row_labels=()) -> None:
  """Writes [n, h, w, 3] uint8 tiles as one PNG grid (atomically); ``row_labels`` are written left of each row."""
  n, h, w, _ = tiles.shape
  rows = -(-n // cols)
  left = 8 + 6 * max((len(t) for t in row_labels), default=0) if row_labels else 0
  grid = np.full((rows * (h + pad) + pad, left + cols * (w + pad) + pad, 3), 255, np.uint8)
  for i in range(n):
    r, c = divmod(i, cols)
    y, x = pad + r * (h + pad), left + pad + c * (w + pad)
    grid[y : y + h, x : x + w] = tiles[i]
  img = Image.fromarray(grid)
  if row_labels:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    for r, text in enumerate(row_labels):
      draw.text((4, pad + r * (h + pad) + max(0, h // 2 - 5)), str(text), fill=(0, 0, 0))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.png"
  img.save(tmp)
  os.replace(tmp, path)
