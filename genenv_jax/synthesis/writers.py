"""Dataset writers: turn finished shards of generated records into an output format.

A writer is told which shards exist (``pending``), is handed each shard's rows
(``put``, written off the generating thread), and writes whatever indexes the
output once every shard is there (``finalize``). The TFDS array_record
folder is the one dataset format today; engine exports are further writers.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
from typing import Protocol

import numpy as np

from genenv_jax.synthesis import provenance

DATASET_NAME = "synthetic_scenes"
_TMP = re.compile(r"^\.tmp-shard-(\d+)-(\d+)$")


class Writer(Protocol):
  def pending(self, mine) -> list[int]: ...

  def put(self, j: int, rows: dict[str, np.ndarray]) -> None: ...

  def close(self) -> None: ...

  def finalize(self, lengths: list[int], description: str) -> list[dict]: ...


def _template(output: str):
  import tensorflow_datasets as tfds

  return tfds.core.ShardedFileTemplate(
    data_dir=output, dataset_name=DATASET_NAME, split="train", filetype_suffix="array_record"
  )


def shard_path(output: str, j: int, num_shards: int) -> str:
  return os.fspath(_template(output).sharded_filepath(shard_index=j, num_shards=num_shards))


def digest_path(shard: str) -> str:
  """The sidecar of a shard: its content digest, file digest and size, written before the shard is renamed in."""
  return os.path.join(os.path.dirname(shard), "." + os.path.basename(shard) + ".sha256")


def read_digest(shard: str) -> dict:
  with open(digest_path(shard)) as f:
    text = f.read().strip()
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    return {"content_sha256": text}  # sidecars before round 2 held the content digest alone


class ArrayRecordWriter:
  """A TFDS dataset folder of array_record shards, serialised and written on a background thread.

  Each record is serialised with a fixed field order, so two clean runs write
  byte-identical files. A shard is written under a temporary name, fsynced,
  its sidecar digest written, then renamed: a shard under its final name is
  complete. ``pending`` checks finished shards against their sidecars (size
  and sha256) and deletes damaged ones so they are generated again.
  """

  def __init__(self, output: str, layout, image_size: int, num_shards: int):
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import example_serializer

    self.output, self.num_shards = output, num_shards
    self.features = layout.tfds_features(
      image_size, {"index": tfds.features.Scalar(dtype=np.int64), "seed": tfds.features.Scalar(dtype=np.int64)}
    )
    self._serializer = example_serializer.ExampleSerializer(self.features.get_serialized_info())
    self._q: queue.Queue = queue.Queue(maxsize=2)
    self._error: BaseException | None = None
    self._t: threading.Thread | None = None

  def path(self, j: int) -> str:
    return shard_path(self.output, j, self.num_shards)

  def serialize(self, row: dict) -> bytes:
    example = self._serializer.get_tf_example(self.features.encode_example(row))
    return example.SerializeToString(deterministic=True)

  def clean_stale(self, mine) -> None:
    """Removes temporary shard files of killed runs (this process's shards only)."""
    for name in os.listdir(self.output):
      m = _TMP.match(name)
      if name.startswith(".tmp-shard-") and (m is None or mine(int(m[1]))):
        os.remove(os.path.join(self.output, name))

  def verify(self, j: int) -> bool:
    """Whether shard ``j`` is complete and undamaged; a damaged one is deleted."""
    path = self.path(j)
    if not os.path.exists(path):
      return False
    try:
      d = read_digest(path)
      ok = "file_sha256" not in d or (
        os.path.getsize(path) == d["size"] and provenance.file_sha256(path) == d["file_sha256"]
      )
    except (OSError, ValueError, KeyError):
      ok = False
    if not ok:
      logging.warning("shard %s is damaged or has no digest: writing it again", path)
      for p in (path, digest_path(path)):
        if os.path.exists(p):
          os.remove(p)
    return ok

  def pending(self, mine) -> list[int]:
    """This process's shards (``mine(j)``) still to write."""
    self.clean_stale(mine)
    return [j for j in range(self.num_shards) if mine(j) and not self.verify(j)]

  def put(self, j: int, rows: dict[str, np.ndarray]) -> None:
    if self._t is None:
      self._t = threading.Thread(target=self._work, daemon=True)
      self._t.start()
    if self._error:
      raise self._error
    self._q.put((j, rows))

  def close(self) -> None:
    if self._t is not None:
      self._q.put(None)
      self._t.join()
    if self._error:
      raise self._error

  def _work(self):
    from array_record.python import array_record_module as arm

    while True:
      item = self._q.get()
      if item is None:
        return
      if self._error:
        continue
      j, rows = item
      final = self.path(j)
      tmp = os.path.join(self.output, f".tmp-shard-{j:05d}-{os.getpid()}")
      try:
        w = arm.ArrayRecordWriter(tmp, "group_size:1")
        keys = sorted(rows)
        for i in range(len(rows["index"])):
          w.write(self.serialize({k: rows[k][i] for k in keys}))
        w.close()
        with open(tmp, "rb") as f:
          os.fsync(f.fileno())
        # The digest goes down before the shard is renamed into place: a
        # shard under its final name always has its digest beside it.
        digest = {
          "content_sha256": provenance.content_digest(rows),
          "file_sha256": provenance.file_sha256(tmp),
          "size": os.path.getsize(tmp),
        }
        with open(digest_path(final), "w") as f:
          json.dump(digest, f, sort_keys=True)
        os.replace(tmp, final)
      except BaseException as e:  # A full disk, mostly: never leave a shard that looks complete.
        if os.path.exists(tmp):
          os.remove(tmp)
        msg = getattr(e, "strerror", None) or str(e)
        self._error = OSError(getattr(e, "errno", None), f"writing shard {j} to {self.output!r} failed: {msg}")

  def finalize(self, lengths: list[int], description: str) -> list[dict]:
    """Writes TFDS's ``dataset_info.json`` and ``features.json``; returns the shards' provenance entries."""
    import tensorflow_datasets as tfds

    paths = [self.path(j) for j in range(self.num_shards)]
    missing = [os.path.basename(q) for q in paths if not os.path.exists(q)]
    if missing:
      raise RuntimeError(f"output={self.output!r}: shards still missing: {missing[:5]}")
    ident = tfds.core.dataset_info.DatasetIdentity(
      name=DATASET_NAME, version=tfds.core.Version("1.0.0"), data_dir=self.output, module_name="genenv_jax"
    )
    info = tfds.core.DatasetInfo(builder=ident, features=self.features, description=description)
    info.set_file_format("array_record")
    split = tfds.core.SplitInfo(
      name="train",
      shard_lengths=lengths,
      num_bytes=sum(os.path.getsize(q) for q in paths),
      filename_template=_template(self.output),
    )
    info.set_splits(tfds.core.SplitDict([split]))
    try:
      info.write_to_directory(self.output)
    except OSError as e:
      raise OSError(e.errno, f"writing dataset_info.json to {self.output!r} failed: {e.strerror}") from e
    entries = []
    for q, n in zip(paths, lengths):
      d = read_digest(q)
      entries.append(
        {
          "file": os.path.basename(q),
          "num_examples": n,
          "file_sha256": d.get("file_sha256") or provenance.file_sha256(q),
          "content_sha256": d["content_sha256"],
        }
      )
    return entries
