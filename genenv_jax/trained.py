"""A trained model loaded back from a train.py workdir (for sampling and evaluation)."""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from genenv_jax import checkpoint, families, parallel, training
from genenv_jax.families import base
from genenv_jax.scenes import get_world


@dataclasses.dataclass
class Trained:
  config: object
  spec: base.DataSpec
  family: base.Family
  params: object  # the parameters that sample (EMA where the family keeps one)
  step: int
  world: object | None
  workdir: str
  train_params: object = None  # all trained parameters (a GAN's include its discriminator)

  @property
  def channels(self):
    return tuple(self.config.data.channels)

  @property
  def num_label_classes(self) -> int:
    return len(self.world.class_names) if self.world else 0


def load(workdir: str, step: int | None = None) -> Trained:
  """Loads the config, family and EMA params of ``workdir`` at ``step`` (default: newest readable)."""
  config, spec = training.load_run_info(workdir)
  family = families.make(config, spec)
  n = 2
  batch = {
    "x": jnp.zeros((n, spec.image_size, spec.image_size, spec.channels)),
    "label": jnp.zeros((n,), jnp.int32),
  }
  abstract = jax.eval_shape(family.init, jax.random.PRNGKey(0), batch)
  # Restore replicated over this process's devices, whatever topology saved it.
  repl = parallel.replicated(Mesh(np.array(jax.local_devices()), ("data",)))
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), abstract)
  ck_dir = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ck_dir):
    raise FileNotFoundError(f"workdir={workdir!r}: no checkpoints folder; train first")
  ck = checkpoint.Checkpointer(ck_dir, 1, 1000)
  state, got = ck.restore_latest(abstract, step, set_aside=False)
  ck.close()
  if state is None:
    raise FileNotFoundError(f"workdir={workdir!r}: no readable checkpoint in {ck_dir}")
  world = get_world(config.data.world) if config.data.source == "world" else None
  return Trained(config, spec, family, state.ema_params, int(got), world, workdir, state.params)
