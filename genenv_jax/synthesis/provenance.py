"""What determines a synthesis's bytes, and the records that prove what was written."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import jax
import numpy as np

from genenv_jax import cpu_kernels
from genenv_jax import workdir as workdir_lib

SETTINGS_FILE = "synthesis.json"
PROVENANCE_FILE = "provenance.json"
LIB_VERSION = "0.1.0"


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything that determines the output bytes (a rerun must match it)."""

  params_sha256: str  # fingerprint of the sampling parameters
  family: str
  checkpoint_step: int
  num_samples: int
  seed: int
  shard_size: int
  temperature: float
  cond: int  # -1: classes drawn per sample
  image_size: int
  channels: tuple
  chunk: int  # per-device micro-batch: the XLA computation, hence the float rounding
  sampler: str = ""  # ODE families: 'solver/steps' (e.g. 'midpoint/16'); '' for the others
  cpu_convolutions: str = "xla"  # XLA:CPU's convolution kernels (cpu_kernels); outputs made before it: 'xla'


def check_temperature(temperature: float) -> float:
  if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
    raise ValueError(f"temperature={temperature!r}: must be a finite number >= 0 (e.g. 0.7 or 1.0)")
  return float(temperature)


def sampler_name(trained) -> str:
  """The ODE sampler that fixes an output's bytes ("" for families without one); a colder fine level and warmer upper
  levels (``hier.fine_temperature``, ``hier.upper_temperature``) and pruned coarse water (``hier.min_water_blocks``)
  appended."""
  if trained.family.canvas is None:
    return ""
  out = f"{trained.family.canvas.solver}/{trained.family.canvas.steps}"
  hr = (trained.family.extras or {}).get("hier")
  if hr is not None and hr.fine_temperature != 1.0:  # 1 (as trained) keeps older outputs' settings
    out += f" fine_temperature={hr.fine_temperature:g}"
  if hr is not None and getattr(hr, "upper_temperature", 1.0) != 1.0:
    out += f" upper_temperature={hr.upper_temperature:g}"
  if hr is not None and getattr(hr, "top_temperature", 1.0) != 1.0:
    out += f" top_temperature={hr.top_temperature:g}"
  if hr is not None and getattr(hr, "pruning", False):
    out += f" min_water_blocks={hr.min_water_blocks}"
  return out


def resolve_cpu_convolutions(output: str, requested: str | None, platform: str) -> str:
  """The convolution kernels a synthesis into ``output`` uses: ``requested``, or else what ``output`` holds.

  ``None`` resumes an existing output with the kernels it was started with
  (``'xla'`` for outputs made before the choice was recorded), so rerunning
  the same command never changes bytes; a new output gets ``'eigen'`` on a
  CPU (1.05-1.25x the samples/s end to end, benchmarks/synthesis_throughput.py) and
  ``'xla'`` on an accelerator, which ignores the choice. An explicit value
  that differs from the output's is refused by ``check_output``.
  """
  if requested is not None:
    cpu_kernels.validate(requested, "cpu_convolutions")
    return requested
  path = os.path.join(output, SETTINGS_FILE)
  if os.path.exists(path):
    return workdir_lib.read_json(path).get("cpu_convolutions", "xla")
  return "eigen" if platform == "cpu" else "xla"


def check_output(output: str, settings: Settings) -> None:
  """Creates ``output`` or checks that it was made with the same settings."""
  try:
    os.makedirs(output, exist_ok=True)
    probe = os.path.join(output, f".write-probe-{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise OSError(e.errno, f"output={output!r}: cannot write there ({e.strerror})") from e
  path = os.path.join(output, SETTINGS_FILE)
  mine = json.loads(json.dumps(dataclasses.asdict(settings)))
  if os.path.exists(path):
    theirs = workdir_lib.read_json(path)
    older = {f.name: f.default for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
    diff = {k: (theirs.get(k, older.get(k)), v) for k, v in mine.items() if theirs.get(k, older.get(k)) != v}
    if diff:
      listed = ", ".join(f"{k}: existing {a!r} vs requested {b!r}" for k, (a, b) in sorted(diff.items()))
      raise ValueError(
        f"output={output!r} holds a synthesis made with other settings ({listed}); "
        "use a new output folder or the same settings"
      )
  elif jax.process_index() == 0:
    workdir_lib.write_json(path, mine)


def content_digest(rows: dict[str, np.ndarray]) -> str:
  """sha256 of a shard's samples (features in sorted order, raw array bytes)."""
  h = hashlib.sha256()
  for k in sorted(rows):
    h.update(k.encode())
    h.update(np.ascontiguousarray(rows[k]).tobytes())
  return h.hexdigest()


def params_fingerprint(params) -> str:
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(params)):
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()


def file_sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


def record(trained, settings: Settings, shards: list[dict]) -> dict:
  """The provenance record: settings, source run, versions and one entry per shard."""
  return {
    **dataclasses.asdict(settings),
    "workdir": trained.workdir.path,
    "config": workdir_lib.config_dict(trained.config),
    "library_version": LIB_VERSION,
    "jax_version": jax.__version__,
    "shards": shards,
  }
