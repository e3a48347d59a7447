"""Data: built-in worlds as TFDS, image folders, TFDS catalog, global batches."""

from genenv_jax.data import pipeline, sources, world_builder

__all__ = ["pipeline", "sources", "world_builder"]
