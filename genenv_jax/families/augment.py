"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for small datasets.

Applied to both real and generated images before the discriminator, so the
generator learns the un-augmented distribution. Translation and cutout act on
every channel alike (labels and height stay aligned with the picture);
brightness/contrast act on the RGB channels only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def translate(key: jax.Array, x: jax.Array, ratio: float) -> jax.Array:
  """Shifts each image by up to ``ratio`` of its size, filling with -1 (black/absent)."""
  b, h, w, c = x.shape
  shift = int(round(h * ratio))
  if shift == 0:
    return x
  pad = jnp.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)), constant_values=-1.0)
  offs = jax.random.randint(key, (b, 2), 0, 2 * shift + 1)

  def crop(img, o):
    return jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c))

  return jax.vmap(crop)(pad, offs)


def cutout(key: jax.Array, x: jax.Array, ratio: float) -> jax.Array:
  """Blanks one random square of side ``ratio * size`` per image (to 0)."""
  b, h, w, _ = x.shape
  size = int(round(h * ratio))
  if size == 0:
    return x
  c = jax.random.randint(key, (b, 2), 0, h)
  yy = jnp.arange(h)[None, :, None]
  xx = jnp.arange(w)[None, None, :]
  inside = (jnp.abs(yy - c[:, 0, None, None]) < size // 2 + 1) & (jnp.abs(xx - c[:, 1, None, None]) < size // 2 + 1)
  return jnp.where(inside[..., None], 0.0, x)


def color(key: jax.Array, x: jax.Array, rgb: bool) -> jax.Array:
  if not rgb:
    return x
  k1, k2 = jax.random.split(key)
  b = x.shape[0]
  bright = jax.random.uniform(k1, (b, 1, 1, 1), minval=-0.25, maxval=0.25)
  contrast = jax.random.uniform(k2, (b, 1, 1, 1), minval=0.75, maxval=1.25)
  im = x[..., :3]
  mean = im.mean(axis=(1, 2, 3), keepdims=True)
  im = (im - mean) * contrast + mean + bright
  return jnp.concatenate([im, x[..., 3:]], axis=-1)


def diff_augment(key: jax.Array, x: jax.Array, translation: float, cutout_ratio: float, rgb_first: bool):
  k1, k2, k3 = jax.random.split(key, 3)
  x = color(k1, x, rgb_first)
  x = translate(k2, x, translation)
  return cutout(k3, x, cutout_ratio)
