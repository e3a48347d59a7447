"""Which library kernels XLA:CPU uses for convolutions: the train step's (``train.cpu_convolutions``), synthesis's.

XLA:CPU (jaxlib 0.10) hands convolutions, dots and reductions to YNNPACK by
default, and runs each YNNPACK convolution on one thread: on a 2-core machine
a 32x32 px, 32-channel layer runs at ~90 GFLOP/s whether one core is free or
two. Its Eigen convolution splits the same layer over both threads (~175
GFLOP/s). ``'eigen'`` compiles the step with convolutions taken out of the
YNNPACK set (dots and reductions stay), through ``jax.jit``'s per-computation
``compiler_options``; nothing process-wide changes. The result equals
``'xla'`` up to float rounding (different kernels sum in a different order).
Accelerators ignore the choice. The train step uses ``train.cpu_convolutions``
(default 'auto': 'eigen' for a new run on a CPU, recorded in run.json; a run
started before round 3 keeps 'xla' on resume); dataset synthesis (``sample.py --cpu_convolutions``) picks
'eigen' for a new output on a CPU and records the choice, so a resumed
output keeps its kernels.
"""

from __future__ import annotations

CHOICES = ("xla", "eigen")
AUTO = "auto"  # the config default: 'eigen' for a new run on a CPU, what an existing run recorded otherwise
# XLA:CPU's default YNNPACK set in jaxlib 0.10 is {individual dots, individual convolutions, reductions}
# (what ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` leaves is the value
# below; tests/test_cpu_kernels.py checks the compiled program keeps YNNPACK for dots and reductions).
_WITHOUT_CONVOLUTIONS = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"


def validate(choice, name: str = "train.cpu_convolutions", auto: bool = False) -> None:
  allowed = [*CHOICES, AUTO] if auto else list(CHOICES)
  if choice not in allowed:
    raise ValueError(
      f"{name}={choice!r}: must be one of {allowed} ('xla': XLA:CPU's default, "
      "one thread per convolution; 'eigen': multi-threaded Eigen convolutions"
      + ("; 'auto': eigen for a new run on a CPU, an existing run's own choice on resume)" if auto else ")")
    )


def resolve(choice: str, recorded: str | None = None, backend: str | None = None) -> str:
  """'auto' -> the kernels to record: ``recorded`` (an existing run's), else 'eigen' on a CPU, 'xla' elsewhere."""
  validate(choice, auto=True)
  if choice != AUTO:
    return choice
  if recorded is not None:
    return recorded
  import jax

  return "eigen" if (backend or jax.default_backend()) == "cpu" else "xla"


def compiler_options(choice: str, backend: str | None = None) -> dict | None:
  """``jax.jit(compiler_options=...)`` for the train step: None unless 'eigen' on the CPU backend."""
  import jax  # here, so reading a config imports no JAX

  choice = resolve(choice, backend=backend)
  if choice == "xla" or (backend or jax.default_backend()) != "cpu":
    return None
  return {"xla_cpu_experimental_ynn_fusion_type": _WITHOUT_CONVOLUTIONS}
