"""From a source to global, sharded training batches.

The batch at step ``s`` is a pure function of ``(seed, s)``: it holds the
examples at positions ``s*B .. s*B+B-1`` of an endless stream made of one
seeded permutation of the dataset per epoch. Process ``p`` of ``P`` reads only
rows ``p*B/P .. (p+1)*B/P`` of it, so a pod run sees exactly the batches of a
one-device run. A background thread prepares the next batches ahead.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator

import jax
import numpy as np

CHANNEL_KINDS = ("rgb", "labels", "height")


def num_channels(channels, num_label_classes: int) -> int:
  """Channels of the model's tensor for the ``data.channels`` tuple."""
  return sum({"rgb": 3, "labels": num_label_classes, "height": 1}[c] for c in channels)


def one_hot_range(channels, num_label_classes: int) -> tuple[int, int]:
  """[start, stop) of the one-hot label channels in the model tensor ((0, 0) if none)."""
  if "labels" not in channels:
    return (0, 0)
  start = num_channels(channels[: list(channels).index("labels")], num_label_classes)
  return (start, start + num_label_classes)


def encode(batch: dict[str, np.ndarray], channels, num_label_classes: int) -> np.ndarray:
  """Source batch -> [n, h, w, C] float32 in [-1, 1]: RGB, one-hot labels, height."""
  parts = []
  for c in channels:
    if c == "rgb":
      parts.append(batch["image"].astype(np.float32) / 127.5 - 1.0)
    elif c == "labels":
      onehot = np.eye(num_label_classes, dtype=np.float32)[batch["labels"]]
      parts.append(onehot * 2.0 - 1.0)
    elif c == "height":
      parts.append(batch["height"][..., None].astype(np.float32) / 127.5 - 1.0)
  return np.concatenate(parts, axis=-1)


def decode(x: np.ndarray, channels, num_label_classes: int) -> dict[str, np.ndarray]:
  """Model tensor [n, h, w, C] in [-1, 1] -> ``rgb`` uint8, ``labels`` and ``height`` [0, 1] where present."""
  x = np.asarray(x, np.float32)
  out, k = {}, 0
  for c in channels:
    if c == "rgb":
      out["rgb"] = np.clip((x[..., k : k + 3] + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
      k += 3
    elif c == "labels":
      out["labels"] = x[..., k : k + num_label_classes].argmax(-1).astype(np.uint8)
      k += num_label_classes
    elif c == "height":
      out["height"] = np.clip((x[..., k] + 1.0) / 2.0, 0.0, 1.0)
      k += 1
  return out


class StepIndexer:
  """Maps (step, row) to a dataset index; one seeded permutation per epoch."""

  def __init__(self, n: int, seed: int, global_batch: int):
    self.n, self.seed, self.global_batch = n, seed, global_batch
    self._perms: dict[int, np.ndarray] = {}

  def _perm(self, epoch: int) -> np.ndarray:
    if epoch not in self._perms:
      if len(self._perms) > 2:
        self._perms.pop(min(self._perms))
      self._perms[epoch] = np.random.default_rng([self.seed, 7, epoch]).permutation(self.n)
    return self._perms[epoch]

  def indices(self, step: int, rows: slice | None = None) -> np.ndarray:
    pos = step * self.global_batch + np.arange(self.global_batch, dtype=np.int64)
    if rows is not None:
      pos = pos[rows]
    epochs, within = pos // self.n, pos % self.n
    return np.array([self._perm(int(e))[w] for e, w in zip(epochs, within)], np.int64)


def process_rows(global_batch: int) -> slice:
  """Rows of the global batch that this process reads."""
  p, n = jax.process_index(), jax.process_count()
  per = global_batch // n
  return slice(p * per, (p + 1) * per)


class Loader:
  """Yields ``(step, batch)`` with ``batch = {'x': [B, h, w, C], 'label': [B]}`` global arrays.

  Args:
    source: a ``sources.Source``.
    channels: which channels the model sees (see ``encode``).
    num_label_classes: classes of the world's label map.
    seed: data seed.
    global_batch: batch size summed over all devices and hosts.
    sharding: ``NamedSharding`` of the batch (leading axis along ``data``).
    prefetch: how many batches to prepare ahead on a background thread.
  """

  def __init__(self, source, channels, num_label_classes, seed, global_batch, sharding, prefetch=2):
    self.source, self.channels, self.k = source, tuple(channels), num_label_classes
    self.global_batch, self.sharding, self.prefetch = global_batch, sharding, prefetch
    self.indexer = StepIndexer(len(source), seed, global_batch)
    self.rows = process_rows(global_batch)

  def host_batch(self, step: int) -> dict[str, np.ndarray]:
    """This process's rows of the step's batch, encoded, as numpy."""
    raw = self.source.get(self.indexer.indices(step, self.rows))
    return {"x": encode(raw, self.channels, self.k), "label": raw["label"].astype(np.int32)}

  def global_batch_at(self, step: int) -> dict[str, jax.Array]:
    local = self.host_batch(step)
    return {
      k: jax.make_array_from_process_local_data(self.sharding, v, (self.global_batch, *v.shape[1:]))
      for k, v in local.items()
    }

  def iterate(self, start: int, stop: int) -> Iterator[tuple[int, dict[str, jax.Array]]]:
    """Batches for steps ``start .. stop-1``, prepared ahead on a thread."""
    q: queue.Queue = queue.Queue(maxsize=max(1, self.prefetch))
    done = threading.Event()

    def work():
      try:
        for s in range(start, stop):
          if done.is_set():
            return
          item = (s, self.global_batch_at(s))
          while not done.is_set():
            try:
              q.put(item, timeout=0.1)
              break
            except queue.Full:
              continue
      except BaseException as e:  # Hand errors to the consumer.
        q.put(e)
      q.put(None)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
      while True:
        item = q.get()
        if item is None:
          return
        if isinstance(item, BaseException):
          raise item
        yield item
    finally:
      done.set()
