"""``python -m genenv_jax.models``: the shipped models, one per line, the name first."""

from genenv_jax import models

if __name__ == "__main__":
  for name in models.names():
    print(models.describe(name))
