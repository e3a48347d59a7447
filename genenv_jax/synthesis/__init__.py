"""Dataset synthesis: index ranges -> generation on the devices -> a writer.

Sample ``i`` is ``family.sample(params, fold_in(key(seed), i), 1)[0]``: a pure
function of (params, seed, i). Every device runs the generator on the same
fixed micro-batch shape (``chunk``) under ``shard_map``, so the bytes do not
depend on the device count or the batch size. On a CPU a new output uses
Eigen's convolutions (``cpu_kernels``; 1.05-1.25x the samples/s), recorded with
the settings like ``chunk``, so a resumed output keeps its kernels. Shard ``j`` holds indices
``j*S .. (j+1)*S-1``; the writer (``writers.ArrayRecordWriter``) makes each
shard appear complete or not at all, so a rerun after a kill skips finished
shards and redoes the rest. The result is a TFDS dataset directory that
``tfds.builder_from_directory(DIR).as_data_source('train')`` reads without
TensorFlow.
"""

from __future__ import annotations

import collections
import os
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from genenv_jax import cpu_kernels, logs, parallel
from genenv_jax import workdir as workdir_lib
from genenv_jax.synthesis import provenance, writers
from genenv_jax.synthesis.provenance import PROVENANCE_FILE, SETTINGS_FILE, Settings
from genenv_jax.synthesis.writers import digest_path, shard_path

IN_FLIGHT = 3  # batches dispatched ahead of the one being fetched


def make_generate(trained, mesh: Mesh, chunk: int, temperature: float | None, cond: int, cpu_convolutions: str = "xla"):
  """Jitted (params, indices [B], seed) -> dict of records (uint8, heights uint16), sharded over ``mesh``.

  ``temperature=None`` is the family's default (what evaluation scores).
  ``cpu_convolutions``: XLA:CPU's convolution kernels (``cpu_kernels``);
  they change the float rounding, so a synthesis records its choice.
  """
  fam, layout = trained.family, trained.layout

  def one(params, key):
    c = None if cond < 0 else cond
    return fam.sample(params, key, 1, c, temperature)[0]

  def per_device(params, keys):
    # Fixed micro-batches: the same XLA computation whatever the batch size
    # or the device count, hence the same bytes.
    ks = keys.reshape(-1, chunk, *keys.shape[1:])
    x = jax.lax.map(lambda kk: jax.vmap(lambda kk1: one(params, kk1))(kk), ks)
    return x.reshape(-1, *x.shape[2:])

  sharded = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("data")), out_specs=P("data"))

  def generate(params, indices, seed):
    base_key = jax.random.PRNGKey(seed)
    keys = jax.vmap(lambda i: jax.random.fold_in(base_key, i))(indices)
    return layout.to_records(sharded(params, keys))

  return jax.jit(
    generate,
    in_shardings=(NamedSharding(mesh, P()), NamedSharding(mesh, P("data")), None),
    compiler_options=cpu_kernels.compiler_options(cpu_convolutions, mesh.devices.flat[0].platform),
  )


class Prepared(NamedTuple):
  """A checked synthesis: its settings, the shard writer and the shards left to write."""

  mesh: Mesh
  settings: Settings
  output: str
  writer: writers.ArrayRecordWriter
  todo: list[int]
  done: dict | None  # the provenance when the output is already complete


def covering_batch(batch_size: int, num_samples: int, shard_size: int, unit: int) -> int:
  """``batch_size``, or less where a shard holds fewer samples: the smallest multiple of ``unit`` (devices x
  chunk) that covers one shard. A batch is computed whole, so 16 samples at the default 256 drew 256; the
  bytes do not depend on the batch size (``chunk`` fixes the computation), so nothing else changes."""
  return min(batch_size, -(-min(shard_size, num_samples) // unit) * unit)


def prepare(
  trained, output, num_samples, seed, batch_size, shard_size, temperature, cond, chunk, num_devices, cpu_convolutions
) -> Prepared:
  """Every check of ``run``, before anything compiles; the shards still to write (a rerun resumes)."""
  mesh = parallel.local_mesh(num_devices)
  n_dev = mesh.devices.size
  if num_samples < 1:
    raise ValueError(f"num_samples={num_samples}: must be >= 1")
  if shard_size < 1:
    raise ValueError(f"shard_size={shard_size}: must be >= 1")
  if not isinstance(chunk, int) or chunk < 1:
    raise ValueError(f"chunk={chunk!r}: must be a positive integer (samples per device call, e.g. 8)")
  if batch_size < 1 or batch_size % (n_dev * chunk):
    raise ValueError(
      f"batch_size={batch_size}: must be a multiple of {n_dev} local devices x chunk {chunk} = {n_dev * chunk}"
    )
  spec = trained.spec
  if cond >= spec.num_classes or cond < -1 or (cond >= 0 and not spec.conditional):
    allowed = f"0..{spec.num_classes - 1}" if spec.conditional else "none (unconditional model)"
    raise ValueError(f"cond={cond}: allowed classes are {allowed}")
  temperature = provenance.check_temperature(trained.family.sample_temperature if temperature is None else temperature)
  output = os.path.abspath(os.path.expanduser(output))
  kernels = provenance.resolve_cpu_convolutions(output, cpu_convolutions, mesh.devices.flat[0].platform)
  settings = Settings(
    params_sha256=provenance.params_fingerprint(trained.params),
    family=trained.config.family,
    checkpoint_step=trained.step,
    num_samples=num_samples,
    seed=seed,
    shard_size=shard_size,
    temperature=temperature,
    cond=cond,
    image_size=spec.image_size,
    channels=tuple(trained.channels),
    chunk=chunk,
    sampler=provenance.sampler_name(trained),
    cpu_convolutions=kernels,
  )
  provenance.check_output(output, settings)
  num_shards = -(-num_samples // shard_size)
  p, n_proc = jax.process_index(), jax.process_count()
  writer = writers.ArrayRecordWriter(output, trained.layout, spec.image_size, num_shards)
  todo = writer.pending(lambda j: j % n_proc == p)
  prov_path = os.path.join(output, PROVENANCE_FILE)
  if todo and os.path.exists(prov_path) and p == 0:
    os.remove(prov_path)  # it describes shards that are being written again
  if not todo and os.path.exists(prov_path):
    logs.phase(f"{output}: already complete ({num_samples} samples); nothing to do")
    return Prepared(mesh, settings, output, writer, todo, workdir_lib.read_json(prov_path))
  return Prepared(mesh, settings, output, writer, todo, None)


def shard_rows(generate, params, j: int, settings: Settings, batch_size: int) -> dict[str, np.ndarray]:
  """The records of shard ``j`` (what ``run`` writes for it), generated in one process, batch by batch."""
  lo = j * settings.shard_size
  hi = min(lo + settings.shard_size, settings.num_samples)
  parts = []
  for b0 in range(lo, hi, batch_size):
    idx = np.arange(b0, b0 + batch_size, dtype=np.int32)
    host = jax.device_get(generate(params, idx, settings.seed))
    host["index"] = idx
    parts.append(host)
  return _rows(parts, lo, hi, settings.seed)


def _rows(parts, lo, hi, seed) -> dict[str, np.ndarray]:
  rows = {k: np.concatenate([q[k] for q in parts])[: hi - lo] for k in parts[0]}
  rows["index"] = rows["index"].astype(np.int64)
  rows["seed"] = np.full(hi - lo, seed, np.int64)
  return rows


def run(
  trained,
  output: str,
  num_samples: int,
  seed: int = 0,
  batch_size: int = 256,
  shard_size: int = 10_000,
  temperature: float | None = None,
  cond: int = -1,
  chunk: int = 8,
  progress: bool = True,
  num_devices: int = -1,
  cpu_convolutions: str | None = None,
) -> dict:
  """Writes ``num_samples`` samples of ``trained`` into the TFDS directory ``output``.

  ``temperature=None`` uses the family's own default (``family.sample_temperature``),
  the distribution that ``eval.py`` and the training evaluations score.
  ``cpu_convolutions=None`` keeps what ``output`` was started with, and for a
  new output picks ``'eigen'`` on a CPU (both cores per convolution) and
  ``'xla'`` elsewhere; see ``provenance.resolve_cpu_convolutions``.

  Returns:
    The provenance record (also written to ``output/provenance.json``).
  """
  pre = prepare(
    trained, output, num_samples, seed, batch_size, shard_size, temperature, cond, chunk, num_devices, cpu_convolutions
  )
  if pre.done is not None:
    return pre.done
  mesh, settings, output, writer, todo = pre.mesh, pre.settings, pre.output, pre.writer, pre.todo
  batch_size = covering_batch(batch_size, num_samples, shard_size, mesh.devices.size * chunk)
  temperature, kernels, n_proc = settings.temperature, settings.cpu_convolutions, jax.process_count()
  generate = make_generate(trained, mesh, chunk, temperature, cond, kernels)
  from tqdm import tqdm

  total = sum(min(shard_size, num_samples - j * shard_size) for j in todo)
  logs.phase(f"synthesizing {total} of {num_samples} samples into {output}")
  bar = tqdm(total=total, disable=not progress, unit="sample", desc="synthesize", dynamic_ncols=True)

  def batches():
    for j in todo:
      lo, hi = j * shard_size, min((j + 1) * shard_size, num_samples)
      starts = list(range(lo, hi, batch_size))
      for b0 in starts:
        yield j, lo, hi, b0 == starts[-1], np.arange(b0, b0 + batch_size, dtype=np.int32)

  # Several batches in flight: the devices (and, on a CPU, its cores) keep
  # generating while the host fetches, and the writer thread serialises.
  inflight: collections.deque = collections.deque()
  parts: list = []

  def retire():
    j, lo, hi, last, idx, out = inflight.popleft()
    host = jax.device_get(out)
    host["index"] = idx
    parts.append(host)
    bar.update(int(min(batch_size, hi - idx[0])))
    if last:
      rows = _rows(parts, lo, hi, seed)
      parts.clear()
      writer.put(j, rows)  # serialised and written on the writer thread

  try:
    for j, lo, hi, last, idx in batches():
      inflight.append((j, lo, hi, last, idx, generate(trained.params, idx, seed)))  # the tail is dropped
      if len(inflight) > IN_FLIGHT:
        retire()
    while inflight:
      retire()
  finally:
    bar.close()
    writer.close()
  if n_proc > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("genenv_jax synthesis shards written")
  return finalize(trained, output, settings, writer, generate, batch_size)


def finalize(trained, output, settings, writer, generate, batch_size) -> dict:
  """Writes dataset_info, the contact sheet and the provenance once all shards exist."""
  num_shards = writer.num_shards
  prov_path = os.path.join(output, PROVENANCE_FILE)
  if jax.process_index() != 0:
    return {}
  lengths = [min(settings.shard_size, settings.num_samples - j * settings.shard_size) for j in range(num_shards)]
  shards = writer.finalize(lengths, f"Scenes sampled from {trained.workdir} by genenv_jax.")
  # Contact sheet: the first samples.
  n = min(64, settings.num_samples)
  idx = np.arange(0, -(-n // batch_size) * batch_size, dtype=np.int32)
  sheet = jax.device_get(generate(trained.params, idx, settings.seed))
  decoded = trained.layout.from_records({k: v[:n] for k, v in sheet.items()})
  sheet_path = os.path.join(output, "contact_sheet.png")
  try:
    logs.save_grid(sheet_path, trained.layout.tiles(decoded), cols=8)
    rec = provenance.record(trained, settings, shards)
    workdir_lib.write_json(prov_path, rec)
  except OSError as e:
    raise OSError(e.errno, f"finishing {output!r} failed: {e.strerror or e}") from e
  logs.phase(f"wrote {settings.num_samples} samples in {num_shards} shards to {output}")
  return rec


__all__ = [
  "run",
  "Settings",
  "make_generate",
  "shard_path",
  "digest_path",
  "PROVENANCE_FILE",
  "SETTINGS_FILE",
]
