"""Shared convolutional blocks.

Upsampling is a 3x3 convolution followed by depth-to-space (pixel shuffle):
on XLA:CPU the backward pass of ``nn.ConvTranspose`` was ~8x slower for the
same layer sizes (see shared STACK_NOTES), and pixel shuffle also avoids the
checkerboard artefacts of strided transposed convolutions.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def lrelu(x):
  return nn.leaky_relu(x, 0.2)


def depth_to_space(x: jax.Array, r: int = 2) -> jax.Array:
  """[b, h, w, c*r*r] -> [b, h*r, w*r, c]."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, r, r, c // (r * r))
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * r, w * r, c // (r * r))


def avg_pool2(x: jax.Array) -> jax.Array:
  """2x2 average pooling: [b, h, w, c] -> [b, h/2, w/2, c]."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Normalises each pixel's feature vector (ProGAN); batch-independent."""
  return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)


class Upsample(nn.Module):
  """2x upsampling: conv 3x3 to 4*features, then depth-to-space."""

  features: int

  @nn.compact
  def __call__(self, x):
    return depth_to_space(nn.Conv(4 * self.features, (3, 3))(x), 2)


class ConvBlock(nn.Module):
  """Two 3x3 convolutions with leaky ReLU and a 1x1 residual shortcut."""

  features: int
  norm: bool = False

  @nn.compact
  def __call__(self, x):
    skip = nn.Conv(self.features, (1, 1), use_bias=False)(x) if x.shape[-1] != self.features else x
    h = lrelu(nn.Conv(self.features, (3, 3))(x))
    if self.norm:
      h = pixel_norm(h)
    h = nn.Conv(self.features, (3, 3))(h)
    h = lrelu(h)
    if self.norm:
      h = pixel_norm(h)
    return (h + skip) * (1 / jnp.sqrt(2.0))
