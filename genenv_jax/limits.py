"""Limits the entry points name in their help (kept here so ``--help`` imports no JAX)."""

MAX_SCENE_PIXELS = 16384 * 16384  # larger tiled scenes need --force (hours of work and tens of GB of PNG)
