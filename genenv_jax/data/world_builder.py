"""Built-in scene worlds as a TFDS dataset that is generated locally.

No network and no TensorFlow: the builder writes ``array_record`` files, read
back by random access with ``tfds.data_source``. Scene ``i`` of the train split
is ``world.generate(i, size)``; the test split uses seeds offset by 10**9, so
the two never share a scene.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from genenv_jax.scenes import get_world

TEST_SEED_OFFSET = 10**9
# 1.1.0: heights stored at 16 bits (uint16, 65535 = the world's highest), so a model of a world learns the
# same 65536 levels its exports and synthesized datasets hold; 1.0.0 stored 8 bits.
VERSION = "1.1.0"


@dataclasses.dataclass
class WorldConfig(tfds.core.BuilderConfig):
  world: str = "city"
  size: int = 32
  num_train: int = 1000
  num_test: int = 200


def config_name(world: str, size: int, num_train: int, num_test: int) -> str:
  """Names the generated data; includes the world's generator version, so a
  changed generator never reuses scenes an older one wrote."""
  return f"{world}_v{get_world(world).version}_{size}px_{num_train}_{num_test}"


class SceneWorld(tfds.core.GeneratorBasedBuilder):
  """Procedural scenes: RGB rendering, label map, height map, scene class."""

  VERSION = tfds.core.Version(VERSION)
  BUILDER_CONFIGS = []  # Made on demand by ``builder`` below.

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    world = get_world(cfg.world)
    s = cfg.size
    features = tfds.features.FeaturesDict(
      {
        "image": tfds.features.Tensor(shape=(s, s, 3), dtype=np.uint8),
        "labels": tfds.features.Tensor(shape=(s, s), dtype=np.uint8),
        "height": tfds.features.Tensor(shape=(s, s), dtype=np.uint16),
        "label": tfds.features.ClassLabel(names=list(world.scene_class_names)),
        "index": tfds.features.Scalar(dtype=np.int64),
      }
    )
    # dataset_info_from_configs() fails for builders outside a TFDS package.
    return tfds.core.DatasetInfo(builder=self, description=__doc__, features=features)

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded.
    cfg = self.builder_config
    return {
      "train": self._generate_examples(0, cfg.num_train),
      "test": self._generate_examples(TEST_SEED_OFFSET, cfg.num_test),
    }

  def _generate_examples(self, offset: int, n: int):
    cfg = self.builder_config
    world = get_world(cfg.world)
    for i in range(n):
      sc = world.generate(offset + i, cfg.size)
      yield (
        i,
        {
          "image": sc.rgb,
          "labels": sc.labels,
          "height": height_record(sc.height),
          "label": sc.scene_class,
          "index": offset + i,
        },
      )


def height_record(height) -> np.ndarray:
  """A world's heights in [0, 1] as a 16-bit record."""
  return np.clip(np.round(np.asarray(height, np.float64) * 65535.0), 0, 65535).astype(np.uint16)


class _ExpectedTFDSNotes:
  """Drops the two lines TFDS logs for every builder outside its catalog before its data exist (expected here)."""

  def filter(self, record):
    msg = str(record.msg)
    return not ("Using custom data configuration" in msg or "has no dataset_info.json" in msg)


_NOTES = _ExpectedTFDSNotes()


def builder(world: str, size: int, num_train: int, num_test: int, data_dir: str) -> SceneWorld:
  """Returns the (maybe not yet prepared) builder for one world and size."""
  get_world(world)  # Clear error for an unknown world before TFDS is involved.
  cfg = WorldConfig(
    name=config_name(world, size, num_train, num_test),
    version=VERSION,
    world=world,
    size=size,
    num_train=num_train,
    num_test=num_test,
  )
  import logging

  for name in ("absl", "tensorflow_datasets"):  # TFDS logs through absl's logger; any tool that builds gets this
    if _NOTES not in logging.getLogger(name).filters:
      logging.getLogger(name).addFilter(_NOTES)
  return SceneWorld(config=cfg, data_dir=os.path.expanduser(data_dir), file_format="array_record")


def prepare(world: str, size: int, num_train: int, num_test: int, data_dir: str):
  """Generates the dataset if it is not already on disk; returns the builder.

  Processes that share a ``data_dir`` take turns (a file lock): the first
  generates, the others then find the dataset prepared.
  """
  import fcntl

  root = os.path.expanduser(data_dir)
  try:
    os.makedirs(root, exist_ok=True)
    lock = open(os.path.join(root, ".genenv-prepare.lock"), "a")
  except OSError as e:
    raise OSError(e.errno, f"data.data_dir={data_dir!r}: cannot write there ({e.strerror})") from e
  with lock:
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    b = builder(world, size, num_train, num_test, data_dir)
    if not b.is_prepared():
      _generate(b, world, size, num_train, num_test)
  return b


def _generate(b, world: str, size: int, num_train: int, num_test: int) -> None:
  """Runs TFDS's preparation with one console line instead of its "Downloading ..." banner and bars."""
  import contextlib
  import io
  import time

  import tensorflow_datasets as tfds

  from genenv_jax import logs

  t = time.time()
  tfds.display_progress_bar(False)
  what = f"generating the {world} world once: {num_train} training and {num_test} test scenes of {size} px"
  try:
    with logs.waiting(what), contextlib.redirect_stdout(io.StringIO()):  # TFDS prints a banner; nothing downloads
      b.download_and_prepare()
  finally:
    tfds.display_progress_bar(True)
  logs.phase(f"wrote {b.data_dir} ({time.time() - t:.0f} s)")
