"""Device mesh, shardings and multi-host start.

Data parallelism is ``jax.jit`` over a ``Mesh`` with ``NamedSharding``: the
batch is split along the mesh's ``data`` axis and parameters are replicated.
This is what ``jax.pmap`` + ``lax.pmean`` did, in the form JAX maintains
(pmap is in maintenance mode); XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

import logging

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
  """Starts JAX's multi-process runtime.

  ``coordinator=''`` and ``num_processes=1`` means a single process. On a TPU
  pod or a SLURM/Kubernetes GPU cluster, ``coordinator='auto'`` lets JAX read
  the cluster's environment.
  """
  if coordinator == "auto":
    jax.distributed.initialize()
  elif num_processes > 1:
    if not coordinator:
      raise ValueError(f"num_processes={num_processes}: needs --coordinator=HOST:PORT")
    if not 0 <= process_id < num_processes:
      raise ValueError(f"process_id={process_id}: must be in [0, {num_processes})")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
  logging.info(
    "process %d of %d, %d local / %d global devices",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )


def make_mesh(num_devices: int = -1, local: bool = False, name: str = "mesh.num_devices") -> Mesh:
  """The 1-D ``('data',)`` mesh: over ``num_devices`` devices (-1: all of them).

  ``local`` takes this process's devices only (synthesis: each host
  generates its own shards). This is the one place a mesh is made.
  """
  devices = jax.local_devices() if local else jax.devices()
  if num_devices == -1:
    num_devices = len(devices)
  if not isinstance(num_devices, int) or not 1 <= num_devices <= len(devices):
    raise ValueError(f"{name}={num_devices}: must be -1 (all) or 1..{len(devices)}")
  return Mesh(np.array(devices[:num_devices]), ("data",))


def local_mesh(num_devices: int = -1) -> Mesh:
  """This process's devices (all, or the first ``num_devices``)."""
  return make_mesh(num_devices, local=True, name="num_devices")


def check_batch(global_batch: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  if global_batch % n or global_batch % jax.process_count():
    raise ValueError(
      f"train.batch_size={global_batch}: must be divisible by the {n} devices of the mesh "
      f"(and the {jax.process_count()} processes); for example {max(n, (global_batch // n) * n or n)}"
    )


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def put_global(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A host array that every process holds in full -> a global array laid out by ``sharding``.

  Each process places only the slices its own devices hold, so this works on
  one host and on a multi-host mesh alike.
  """
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def to_host(x: jax.Array) -> np.ndarray:
  """The whole value of a global array, on every process (gathered across hosts when needed)."""
  if x.is_fully_addressable:
    return np.asarray(jax.device_get(x))
  from jax.experimental import multihost_utils

  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
