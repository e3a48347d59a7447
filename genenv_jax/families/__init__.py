"""Model families: an explicit registry from ``config.family`` to a module's ``make``.

This is the one place that reads a config for a family: it picks the sections
the family declares, builds its optax optimisers (one per entry of the
family's ``OPTIMIZERS``, learning rate from ``optim.<key>``) and hands them
over as explicit arguments.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp

from genenv_jax.families import base, flow, flow_matching, flow_matching_hier, gan, optim, vae


class Entry(NamedTuple):
  make: Callable[..., base.Family]
  sections: tuple[str, ...]  # config sections passed to ``make``, in order
  optimizers: dict[str, str]  # optimiser name -> its learning-rate key in ``optim``
  roles: base.MetricRoles
  precisions: tuple[str, ...] = ("float32",)  # ``train.precision`` values; others get ``compute_dtype``
  restart_at: Callable[..., int] | None = None  # config -> the step where the schedules start again (0: never)
  make_kwargs: Callable[..., dict] | None = None  # config -> more keyword arguments of ``make`` (read off the data)


FAMILIES = {
  "gan": Entry(gan.make, ("model", "gan"), gan.OPTIMIZERS, gan.ROLES, ("float32", "bfloat16")),
  "flow": Entry(flow.make, ("flow",), flow.OPTIMIZERS, flow.ROLES),
  "vae": Entry(vae.make, ("vae",), vae.OPTIMIZERS, vae.ROLES),
  "flow_matching": Entry(flow_matching.make, ("fm",), flow_matching.OPTIMIZERS, flow_matching.ROLES),
  "flow_matching_hier": Entry(
    flow_matching_hier.make,
    ("fm", "hier"),
    flow_matching_hier.OPTIMIZERS,
    flow_matching_hier.ROLES,
    restart_at=flow_matching_hier.restart_at,
    make_kwargs=flow_matching_hier.make_kwargs,
  ),
}


def entry(name: str) -> Entry:
  if name not in FAMILIES:
    raise ValueError(f"family={name!r}: must be one of {sorted(FAMILIES)}")
  return FAMILIES[name]


def make(config, data: base.DataSpec) -> base.Family:
  """Builds the family ``config.family`` names, for data described by ``data``."""
  e = entry(config.family)
  missing = [s for s in (*e.sections, "optim") if s not in config]
  if missing:
    raise ValueError(f"family={config.family!r}: the config has no {missing} section(s)")
  restart = e.restart_at(config) if e.restart_at else 0
  txs = {
    name: optim.make(config.optim, config.optim[lr_key], config.train.num_steps, restart)
    for name, lr_key in e.optimizers.items()
  }
  precision = config.train.get("precision", "float32")
  if precision not in e.precisions:
    raise ValueError(
      f"train.precision={precision!r}: family={config.family!r} trains in {list(e.precisions)} "
      f"(bfloat16 is an opt-in of the GAN family)"
    )
  kwargs = e.make_kwargs(config) if e.make_kwargs else {}
  if precision != "float32":
    kwargs["compute_dtype"] = jnp.dtype(precision)
  return e.make(*(config[s] for s in e.sections), txs, data, **kwargs)


__all__ = ["FAMILIES", "Entry", "entry", "make", "base"]
