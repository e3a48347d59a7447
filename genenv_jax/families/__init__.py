"""Model families: an explicit registry from ``config.family`` to a module's ``make``."""

from genenv_jax.families import base, flow, gan, vae

FAMILIES = {
  "gan": gan.make,
  "flow": flow.make,
  "vae": vae.make,
}


def make(config, data: base.DataSpec) -> base.Family:
  """Builds the family ``config.family`` names."""
  if config.family not in FAMILIES:
    raise ValueError(f"family={config.family!r}: must be one of {sorted(FAMILIES)}")
  return FAMILIES[config.family](config, data)


__all__ = ["FAMILIES", "make", "base"]
