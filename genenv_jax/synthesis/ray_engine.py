"""Dataset synthesis on a Ray cluster: shards as tasks of actors that hold the jitted generator.

  python sample.py --workdir=W --output=O --num_samples=1000000 --engine=ray --ray_address=auto

The driver makes every check and decision of a local ``sample.py`` run
(``synthesis.prepare``: the settings, the shards still to write); each
pending shard (an index range) goes to one of ``workers`` actors, each of
which loads the model once (the workdir at the same step, or the shipped
model, and refuses parameters whose fingerprint differs from the driver's),
compiles the same generator with the same micro-batch (``chunk``) and CPU
kernels, and returns the shard's records. The driver writes them with the
local path's writer and finalizes the same provenance, so the output is
byte-identical to a local run with the same settings (same shards, same
sha256) and a rerun resumes.

A worker that dies (killed, preempted, out of memory) loses only its shard:
the driver starts a new actor and gives the shard to it (up to
``max_retries`` times per shard). Samples depend only on (parameters, seed,
index), so which process draws a shard never changes its bytes.

On a real cluster the workdir must be readable at the same path on every
node (a shared filesystem), or use a shipped ``--model``, which is package
data wherever genenv_jax is installed.
"""

from __future__ import annotations

import dataclasses
import os

from genenv_jax import logs


def _probe(address: str) -> None:
  """A HOST:PORT that nothing listens on is refused at once (ray.init would retry it for minutes)."""
  import socket

  if address in ("auto", "local") or "://" in address:
    return
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise ValueError(f"--ray_address={address!r}: must be 'auto', HOST:PORT or ray://HOST:PORT")
  try:
    socket.create_connection((host, int(port)), timeout=5).close()
  except OSError as e:
    raise ValueError(
      f"--ray_address={address!r}: no Ray cluster answers there ({e.strerror or e}); "
      "start one with `ray start --head` or leave --ray_address out for a local cluster"
    ) from None


def _import_ray():
  try:
    import ray
  except ImportError:
    raise ValueError(
      "--engine=ray needs Ray, which is optional: pip install -r requirements-ray.txt (or pip install '.[ray]')"
    ) from None
  return ray


class ShardWorker:
  """A Ray actor's state: the model and its jitted generator, loaded once per process."""

  def __init__(self, source: dict, settings: dict, batch_size: int, num_devices: int):
    from genenv_jax import parallel, trained
    from genenv_jax.synthesis import make_generate, provenance

    if source.get("model"):
      from genenv_jax import models

      model = models.load(source["model"])
    else:
      model = trained.load(source["workdir"], source["step"])
    model = trained.with_sampler(
      model,
      source.get("solver", ""),
      source.get("steps", 0),
      source.get("fine_temperature"),
      source.get("upper_temperature"),
      source.get("top_temperature"),
      source.get("min_water_blocks"),
    )
    self.settings = provenance.Settings(**{**settings, "channels": tuple(settings["channels"])})
    got = provenance.params_fingerprint(model.params)
    if got != self.settings.params_sha256:
      raise ValueError(
        f"worker pid {os.getpid()}: parameters {got[:12]}... differ from the driver's "
        f"{self.settings.params_sha256[:12]}... (a different checkpoint at {source})"
      )
    self.model = model
    self.batch_size = batch_size
    mesh = parallel.local_mesh(num_devices)
    s = self.settings
    self.generate = make_generate(model, mesh, s.chunk, s.temperature, s.cond, s.cpu_convolutions)

  def pid(self) -> int:
    return os.getpid()

  def shard(self, j: int):
    from genenv_jax.synthesis import shard_rows

    return j, shard_rows(self.generate, self.model.params, j, self.settings, self.batch_size)


def run(
  trained,
  source: dict,
  output: str,
  num_samples: int,
  seed: int = 0,
  batch_size: int = 256,
  shard_size: int = 10_000,
  temperature: float | None = None,
  cond: int = -1,
  chunk: int = 8,
  cpu_convolutions: str | None = None,
  address: str = "",
  workers: int = 2,
  worker_devices: int = -1,
  max_retries: int = 3,
  on_shard=None,
) -> dict:
  """``synthesis.run`` with the shards drawn by Ray actors; returns the provenance (and ``ray_stats`` in it).

  ``source``: how a worker loads the model: ``{"workdir", "step"}`` or ``{"model"}``, plus ``solver``/``steps``
  and ``fine_temperature``/``upper_temperature``/``top_temperature``/``min_water_blocks``.
  ``on_shard(j, actors)``: called after each shard is written (tests kill a worker from it).
  """
  from genenv_jax import synthesis

  ray = _import_ray()
  if not isinstance(workers, int) or workers < 1:
    raise ValueError(f"ray_workers={workers!r}: must be a positive integer")
  pre = synthesis.prepare(
    trained, output, num_samples, seed, batch_size, shard_size, temperature, cond, chunk, -1, cpu_convolutions
  )
  if pre.done is not None:
    return pre.done
  settings, writer, todo = pre.settings, pre.writer, list(pre.todo)
  started_here = False
  if address:
    _probe(address)
  if not ray.is_initialized():
    try:
      if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
      else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started_here = True
    except (ConnectionError, RuntimeError, ValueError) as e:
      raise ValueError(
        f"--ray_address={address!r}: no Ray cluster answers there ({type(e).__name__}: {str(e).splitlines()[0]}); "
        "start one with `ray start --head` or leave --ray_address out for a local cluster"
      ) from None
  Actor = ray.remote(num_cpus=1, max_restarts=0)(ShardWorker)
  sdict = dataclasses.asdict(settings)

  def new_actor():
    return Actor.remote(source, sdict, batch_size, worker_devices)

  actors = [new_actor() for _ in range(min(workers, len(todo)))]
  logs.phase(f"synthesizing {len(todo)} shards on Ray ({len(actors)} workers) into {pre.output}")
  retries = {j: 0 for j in todo}
  pending = {}  # future -> (shard, actor index)
  idle = list(range(len(actors)))
  restarts = 0
  try:
    while todo or pending:
      while todo and idle:
        i = idle.pop()
        j = todo.pop(0)
        pending[actors[i].shard.remote(j)] = (j, i)
      done, _ = ray.wait(list(pending), num_returns=1)
      fut = done[0]
      j, i = pending.pop(fut)
      try:
        _, rows = ray.get(fut)
      except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
        retries[j] += 1
        if retries[j] > max_retries:
          raise RuntimeError(f"shard {j}: its worker died {retries[j]} times; last: {type(e).__name__}") from None
        logs.phase(f"worker {i} died ({type(e).__name__}); shard {j} goes to a new worker")
        actors[i] = new_actor()
        restarts += 1
        todo.insert(0, j)
        idle.append(i)
        continue
      except ray.exceptions.RayTaskError as e:
        cause = e.cause if getattr(e, "cause", None) is not None else e
        raise RuntimeError(f"shard {j} failed on a worker: {cause}") from None
      writer.put(j, rows)
      idle.append(i)
      if on_shard is not None:
        on_shard(j, actors)
  finally:
    writer.close()
    for a in actors:
      ray.kill(a)
    if started_here:
      ray.shutdown()
  generate = synthesis.make_generate(
    trained, pre.mesh, settings.chunk, settings.temperature, settings.cond, settings.cpu_convolutions
  )
  rec = synthesis.finalize(trained, pre.output, settings, writer, generate, batch_size)
  return dict(rec, ray_stats={"workers": len(actors), "worker_restarts": restarts})
