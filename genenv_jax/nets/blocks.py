"""Shared convolutional blocks.

Upsampling is a 3x3 convolution followed by depth-to-space (pixel shuffle):
on XLA:CPU the backward pass of ``nn.ConvTranspose`` was ~8x slower for the
same layer sizes (see shared STACK_NOTES), and pixel shuffle also avoids the
checkerboard artefacts of strided transposed convolutions.
"""

from __future__ import annotations

import functools

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


def conv_or_dot(
  lhs,
  rhs,
  window_strides,
  padding,
  lhs_dilation=None,
  rhs_dilation=None,
  dimension_numbers=None,
  feature_group_count=1,
  batch_group_count=1,
  precision=None,
  preferred_element_type=None,
):
  """``lax.conv_general_dilated`` for Flax's NHWC/HWIO convolutions, a 1x1 kernel computed as a ``dot``.

  Pass it as ``nn.Conv(..., conv_general_dilated=conv_or_dot)``: the layer
  keeps its parameters (a [1, 1, in, out] kernel), so checkpoints read
  either way. A pointwise convolution is a matrix product over the channel
  axis; XLA:CPU runs it (and its gradients) as a ``dot`` 1.1-2x faster than
  as a library convolution. Other kernels go to the convolution unchanged.
  Equal to the convolution up to float rounding.
  """
  ones = lambda v: v is None or all(s == 1 for s in v)  # noqa: E731
  pointwise = rhs.ndim == 4 and rhs.shape[:2] == (1, 1) and ones(window_strides) and ones(lhs_dilation)
  specs = tuple(getattr(dimension_numbers, k, None) for k in ("lhs_spec", "rhs_spec", "out_spec"))
  nhwc = specs == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # Flax's NHWC input / HWIO kernel
  if pointwise and nhwc and feature_group_count == 1 and batch_group_count == 1 and padding_is_zero(padding):
    return jnp.dot(lhs, rhs[0, 0], precision=precision, preferred_element_type=preferred_element_type)
  return jax.lax.conv_general_dilated(
    lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
    feature_group_count, batch_group_count, precision, preferred_element_type,
  )  # fmt: skip


def padding_is_zero(padding) -> bool:
  """True for a padding that adds nothing to a 1x1 kernel's input ('SAME', 'VALID' or all-zero pairs)."""
  if isinstance(padding, str):
    return padding.upper() in ("SAME", "VALID")
  return all(tuple(p) == (0, 0) for p in padding)


def in_chunks(fn, x, chunks: int):
  """``fn`` (per-sample: no coupling across the batch) on ``chunks`` interleaved slices of ``x``, reassembled.

  ``x`` and ``fn``'s result are arrays or pytrees of arrays with the batch
  first. Slice j holds samples j, j + chunks, ...: on a batch sharded along
  devices every device keeps its own samples. The slices are independent
  ops, which XLA:CPU runs concurrently on its worker threads (one library
  convolution per thread); the result equals ``fn(x)`` up to float
  rounding. Falls back to one call when the batch does not divide.
  """
  n = jax.tree.leaves(x)[0].shape[0]
  if chunks <= 1 or n % chunks:
    return fn(x)
  xs = jax.tree.map(lambda a: a.reshape(n // chunks, chunks, *a.shape[1:]), x)
  outs = [fn(jax.tree.map(lambda a, j=j: a[:, j], xs)) for j in range(chunks)]
  return jax.tree.map(lambda *o: jnp.stack(o, axis=1).reshape(n, *o[0].shape[1:]), *outs)


def avg_pool2(x: jax.Array) -> jax.Array:
  """2x2 average pooling: [b, h, w, c] -> [b, h/2, w/2, c]."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Normalises each pixel's feature vector (ProGAN); batch-independent. The mean square is taken in float32."""
  ms = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(ms + eps).astype(x.dtype)


def icnr(base_init=nn.initializers.lecun_normal(), r: int = 2):
  """ICNR (Aitken et al. 2017): the r*r sub-pixel kernels of a pixel-shuffle conv start equal.

  The convolution before ``depth_to_space`` then starts as a nearest-neighbour
  upsampling of one ordinary convolution, so the output has no phase-dependent
  (x mod r) structure at initialisation; stacked upsamplings otherwise leave a
  periodic stripe (period 2^k) that training does not remove.
  """

  def init(key, shape, dtype=jnp.float32):
    *k, fan_out = shape
    small = base_init(key, (*k, fan_out // (r * r)), dtype)
    # depth_to_space reads channel (ry * r + rx) * c + ch: repeat the block r*r times.
    return jnp.tile(small, (1,) * len(k) + (r * r,))

  return init


def upsample_bilinear(x: jax.Array) -> jax.Array:
  """2x bilinear upsampling (half-pixel centres): weights 3/4, 1/4 along each axis, edges clamped."""

  def axis(v, ax):
    n = v.shape[ax]
    prev = jnp.take(v, jnp.clip(jnp.arange(n) - 1, 0, n - 1), axis=ax)
    nxt = jnp.take(v, jnp.clip(jnp.arange(n) + 1, 0, n - 1), axis=ax)
    even, odd = 0.75 * v + 0.25 * prev, 0.75 * v + 0.25 * nxt
    out = jnp.stack([even, odd], axis=ax + 1)
    return out.reshape(*v.shape[:ax], 2 * n, *v.shape[ax + 1 :])

  return axis(axis(x, 1), 2)


class Upsample(nn.Module):
  """2x upsampling.

  ``mode='shuffle'``: conv 3x3 to 4*features, then depth-to-space (``icnr``:
  the sub-pixel kernels start equal). ``mode='bilinear'``: bilinear 2x, then
  conv 3x3 (a resize-convolution: one kernel for every output pixel, no
  sub-pixel phases; the same FLOPs).
  """

  features: int
  icnr: bool = False
  mode: str = "shuffle"
  dtype: jnp.dtype | None = None  # computation dtype (None: the input's); parameters stay float32

  @nn.compact
  def __call__(self, x):
    if self.mode == "bilinear":
      return nn.Conv(self.features, (3, 3), dtype=self.dtype)(upsample_bilinear(x))
    init = icnr() if self.icnr else nn.initializers.lecun_normal()
    return depth_to_space(nn.Conv(4 * self.features, (3, 3), kernel_init=init, dtype=self.dtype)(x), 2)


class ConvBlock(nn.Module):
  """Two 3x3 convolutions with leaky ReLU and a 1x1 residual shortcut."""

  features: int
  norm: bool = False
  dtype: jnp.dtype | None = None  # computation dtype (None: the input's); parameters stay float32

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(nn.Conv, self.features, dtype=self.dtype)
    skip = conv((1, 1), use_bias=False)(x) if x.shape[-1] != self.features else x
    h = lrelu(conv((3, 3))(x))
    if self.norm:
      h = pixel_norm(h)
    h = conv((3, 3))(h)
    h = lrelu(h)
    if self.norm:
      h = pixel_norm(h)
    return (h + skip) * (1 / jnp.sqrt(2.0))
