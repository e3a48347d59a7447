"""A small time-conditioned U-Net: the velocity network of flow matching.

Residual blocks (GroupNorm, SiLU, 3x3 convolutions; the time and class
embedding enters each block as a per-channel scale and shift), 2x average
pooling down, nearest-neighbour 2x up, skip connections by concatenation,
and optional self-attention at the lowest resolution only. GroupNorm is per
sample, so sample i never depends on the rest of the batch. The last
convolution starts at zero (the velocity starts at 0).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def time_features(t: jax.Array, dim: int) -> jax.Array:
  """[b] times in [0, 1] -> [b, dim] sinusoidal features (periods from 1/1000 to 10 time units)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half) / max(half - 1, 1))
  arg = 1000.0 * t[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=-1)


def groups(c: int) -> int:
  g = min(8, c)
  while c % g:
    g -= 1
  return g


class ResBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, emb):
    skip = nn.Conv(self.features, (1, 1), use_bias=False)(x) if x.shape[-1] != self.features else x
    h = nn.silu(nn.GroupNorm(groups(x.shape[-1]))(x))
    h = nn.Conv(self.features, (3, 3))(h)
    scale_shift = nn.Dense(2 * self.features)(emb)[:, None, None, :]
    h = nn.GroupNorm(groups(self.features), use_scale=False, use_bias=False)(h)
    h = h * (1.0 + scale_shift[..., : self.features]) + scale_shift[..., self.features :]
    h = nn.Conv(self.features, (3, 3), kernel_init=nn.initializers.zeros)(nn.silu(h))
    return h + skip


class Attention(nn.Module):
  heads: int = 4

  @nn.compact
  def __call__(self, x):
    b, hh, ww, c = x.shape
    h = nn.GroupNorm(groups(c))(x).reshape(b, hh * ww, c)
    h = nn.MultiHeadDotProductAttention(num_heads=min(self.heads, c), out_kernel_init=nn.initializers.zeros)(h)
    return x + h.reshape(b, hh, ww, c)


class UNet(nn.Module):
  """(x [b, h, w, c], t [b], label [b] or None) -> velocity [b, h, w, out_channels].

  Attributes:
    out_channels: channels of the output.
    widths: features per resolution, finest first; one 2x downsampling between entries.
    blocks: residual blocks per resolution on the way down (the way up has one more).
    attention: self-attention at the lowest resolution.
    num_classes: > 1 adds a class embedding to the time embedding.
  """

  out_channels: int
  widths: tuple[int, ...]
  blocks: int = 1
  attention: bool = False
  num_classes: int = 1

  @nn.compact
  def __call__(self, x, t, label=None):
    ed = 4 * self.widths[0]
    emb = nn.Dense(ed)(time_features(t, self.widths[0]))
    if self.num_classes > 1:
      emb = emb + nn.Embed(self.num_classes, ed)(label)
    emb = nn.Dense(ed)(nn.silu(emb))
    emb = nn.silu(emb)
    h = nn.Conv(self.widths[0], (3, 3))(x)
    skips = [h]
    for i, w in enumerate(self.widths):
      for _ in range(self.blocks):
        h = ResBlock(w)(h, emb)
        skips.append(h)
      if i < len(self.widths) - 1:
        b, hh, ww, c = h.shape
        h = h.reshape(b, hh // 2, 2, ww // 2, 2, c).mean(axis=(2, 4))
        skips.append(h)
    h = ResBlock(self.widths[-1])(h, emb)
    if self.attention:
      h = Attention()(h)
    h = ResBlock(self.widths[-1])(h, emb)
    for i, w in reversed(list(enumerate(self.widths))):
      for _ in range(self.blocks + 1):
        h = ResBlock(w)(jnp.concatenate([h, skips.pop()], axis=-1), emb)
      if i > 0:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
        h = nn.Conv(w, (3, 3))(h)
    h = nn.silu(nn.GroupNorm(groups(h.shape[-1]))(h))
    return nn.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros)(h)
