"""Layers shared by model families.

`Upsample2x` doubles the spatial size with a convolution followed by depth-to-space (sub-pixel convolution, Shi et
al. 2016) instead of a transposed convolution: on CPU, XLA's kernel gradient of a transposed convolution is about
20x slower than PyTorch's, while a plain convolution's gradients take XLA's fast paths.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def depth_to_space(x: jax.Array, block_size: int) -> jax.Array:
  """`[N, H, W, C * b * b] -> [N, H * b, W * b, C]`, the inverse of space-to-depth (TF's channel order)."""
  n, h, w, c = x.shape
  out_channels = c // (block_size * block_size)
  x = x.reshape(n, h, w, block_size, block_size, out_channels)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block_size, w * block_size, out_channels)


class Upsample2x(nn.Module):
  """`[N, H, W, C] -> [N, 2H, 2W, features]` by a 3x3 convolution to 4x the features, then depth-to-space."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(4 * self.features, (3, 3), padding="SAME")(x)
    return depth_to_space(x, 2)


def flatten(x: jax.Array) -> jax.Array:
  return jnp.reshape(x, (x.shape[0], -1))
