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
    layout: the model tensor's ``layout.Layout`` (which channels it sees).
    seed: data seed.
    global_batch: batch size summed over all devices and hosts.
    sharding: ``NamedSharding`` of the batch (leading axis along ``data``).
    prefetch: how many batches to prepare ahead on a background thread.
  """

  def __init__(self, source, layout, seed, global_batch, sharding, prefetch=2):
    self.source, self.layout = source, layout
    self.global_batch, self.sharding, self.prefetch = global_batch, sharding, prefetch
    self.seed = seed
    self._indexer = None  # made on first use: len(source) may generate a world's dataset
    self.rows = process_rows(global_batch)

  @property
  def indexer(self) -> StepIndexer:
    if self._indexer is None:
      self._indexer = StepIndexer(len(self.source), self.seed, self.global_batch)
    return self._indexer

  def host_batch(self, step: int) -> dict[str, np.ndarray]:
    """This process's rows of the step's batch, encoded, as numpy."""
    raw = self.source.get(self.indexer.indices(step, self.rows))
    out = {"x": self.layout.encode(raw), "label": raw["label"].astype(np.int32)}
    if "coarse" in raw:  # a hierarchical model's coarse maps (already model tensors)
      out["x_coarse"] = raw["coarse"]
    if "top" in raw:  # a three-level model's top maps
      out["x_top"] = raw["top"]
    return out

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
