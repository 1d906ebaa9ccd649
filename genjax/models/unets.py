"""The U-Net of denoising diffusion models: `(x_t [N, H, W, C], timesteps [N], labels [N] or None) -> [N, H, W,
out_channels]`, what the diffusion family's network predicts (noise, clean image or velocity: the trainer decides).

The architecture of DDPM (Ho et al. 2020, their TF code `diffusion_tf/models/unet.py`), also that of
improved-diffusion's `UNetModel` with one attention head: a sinusoidal timestep embedding through a two-layer MLP
(4x the base width, SiLU); residual blocks (GroupNorm, SiLU, 3x3 conv; the embedding projected and added to every
position; GroupNorm, SiLU, dropout, 3x3 conv; a 1x1 projection of the skip where the width changes);
single-head self-attention at the resolutions listed; `num_res_blocks` blocks per level at `channels *
multiplier` widths, a strided 3x3 convolution between levels on the way down, and on the way up `num_res_blocks +
1` blocks per level, each on the features concatenated with one skip from the way down, with nearest-neighbour
upsampling and a 3x3 convolution between levels (not a transposed convolution, whose kernel gradient takes XLA's
slow path on CPU, see `layers`). The last convolution of every residual block and of the attention's projection, and
the output convolution, start at zero (as in both references), so that every block starts as the identity.

With `num_classes > 0` a learned class embedding is added to the timestep embedding; index `num_classes` is the
null class (no label), which classifier-free guidance trains by label dropout and samples from unconditionally.

With the CIFAR-10 setting (128 channels, multipliers (1, 2, 2, 2), 2 blocks, attention at 16x16, dropout 0.1) it
has 35.7M parameters, the count of Ho et al. (tests/test_diffusion.py checks it).
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models import layers

# GroupNorm's group count in both references.
MAX_GROUPS = 32
# Fewest channels a group keeps in narrower layers (the references' 128-channel layers have 4 per group).
MIN_GROUP_CHANNELS = 4


def timestep_embedding(timesteps: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """The sinusoidal embedding `[N, dim]` of integer (or real) timesteps `[N]`: sines then cosines of the timesteps
  at `dim // 2` frequencies from 1 down to 1 / max_period (geometrically spaced, the Transformer's; Ho et al. use
  log(max_period) / (half - 1) as the spacing, which this follows); an odd `dim` gets a zero last column."""
  half = dim // 2
  frequencies = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / max(half - 1, 1))
  angles = timesteps.astype(jnp.float32)[:, None] * frequencies[None, :]
  embedding = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
  if dim % 2:
    embedding = jnp.pad(embedding, ((0, 0), (0, 1)))
  return embedding


def group_norm(channels: int) -> nn.GroupNorm:
  """GroupNorm with 32 groups, or for narrower layers the most groups that divide `channels` and keep at least 4
  channels each.

  A group of one channel is instance norm, which erases each feature map's mean and with it the input's overall
  brightness, which the noise prediction must carry at large t to within sqrt(alpha_bar_T) = 0.006. The 16-channel
  runlocal U-Net with a channel per group could not: its x_0 estimates of test digits at t = 999 varied in mean
  brightness with a standard deviation of 5.4 (the digits': 0.09), and half its samples came out grey or white.
  """
  divisors = [groups for groups in range(1, MAX_GROUPS + 1) if channels % groups == 0]
  num_groups = max((groups for groups in divisors if channels // groups >= MIN_GROUP_CHANNELS), default=1)
  return nn.GroupNorm(num_groups=num_groups, epsilon=1e-5)


class ResidualBlock(nn.Module):
  """`[N, H, W, C], embedding [N, E] -> [N, H, W, out_channels]`."""

  out_channels: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, embedding: jax.Array, train: bool) -> jax.Array:
    h = layers.conv(self.out_channels, (3, 3), padding=1)(nn.silu(group_norm(x.shape[-1])(x)))
    h = h + nn.Dense(self.out_channels)(nn.silu(embedding))[:, None, None, :]
    h = nn.silu(group_norm(self.out_channels)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = layers.conv(self.out_channels, (3, 3), padding=1, kernel_init=nn.initializers.zeros)(h)
    if x.shape[-1] != self.out_channels:
      x = nn.Dense(self.out_channels)(x)  # The 1x1 projection ("nin_shortcut").
    return x + h


class AttentionBlock(nn.Module):
  """Single-head self-attention over the H * W positions, with a residual connection: `[N, H, W, C] -> same`."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, height, width, channels = x.shape
    h = group_norm(channels)(x).reshape(n, height * width, channels)
    query, key, value = jnp.split(nn.Dense(3 * channels)(h), 3, axis=-1)
    weights = jax.nn.softmax(jnp.einsum("nqc,nkc->nqk", query, key) / math.sqrt(channels), axis=-1)
    h = jnp.einsum("nqk,nkc->nqc", weights, value)
    h = nn.Dense(channels, kernel_init=nn.initializers.zeros)(h)
    return x + h.reshape(n, height, width, channels)


class UNet(nn.Module):
  """The DDPM U-Net (see the module docstring).

  out_channels:          channels of the prediction (the image's, for noise, clean-image or velocity prediction).
  channels:              the base width; level i has `channels * channel_multipliers[i]`.
  channel_multipliers:   one per resolution level; the image side halves between levels, so it must be divisible
                         by 2 ** (levels - 1).
  num_res_blocks:        residual blocks per level on the way down (one more on the way up).
  attention_resolutions: the feature-map sides (in pixels, e.g. 16 for 16x16) at which blocks attend.
  dropout:               in the residual blocks, in training.
  num_classes:           > 0: class-conditional, labels in [0, num_classes], num_classes being the null class.
  """

  out_channels: int
  channels: int = 128
  channel_multipliers: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attention_resolutions: Sequence[int] = (16,)
  dropout: float = 0.1
  num_classes: int = 0

  @nn.compact
  def __call__(
      self, x: jax.Array, timesteps: jax.Array, labels: jax.Array | None = None, train: bool = False
  ) -> jax.Array:
    embedding_size = 4 * self.channels
    embedding = timestep_embedding(timesteps, self.channels)
    embedding = nn.Dense(embedding_size)(nn.silu(nn.Dense(embedding_size)(embedding)))
    if self.num_classes:
      embedding = embedding + nn.Embed(self.num_classes + 1, embedding_size)(labels)

    def blocks_at(h, width):
      h = ResidualBlock(width, self.dropout)(h, embedding, train)
      return AttentionBlock()(h) if h.shape[1] in self.attention_resolutions else h

    h = layers.conv(self.channels, (3, 3), padding=1)(x)
    skips = [h]
    last_level = len(self.channel_multipliers) - 1
    for level, multiplier in enumerate(self.channel_multipliers):
      for _ in range(self.num_res_blocks):
        h = blocks_at(h, self.channels * multiplier)
        skips.append(h)
      if level != last_level:
        h = layers.Conv(h.shape[-1], 3, 2, 1)(h)
        skips.append(h)

    h = ResidualBlock(h.shape[-1], self.dropout)(h, embedding, train)
    h = AttentionBlock()(h)
    h = ResidualBlock(h.shape[-1], self.dropout)(h, embedding, train)

    for level, multiplier in reversed(list(enumerate(self.channel_multipliers))):
      for _ in range(self.num_res_blocks + 1):
        h = blocks_at(jnp.concatenate([h, skips.pop()], axis=-1), self.channels * multiplier)
      if level != 0:
        n, height, width, channels = h.shape
        h = jax.image.resize(h, (n, 2 * height, 2 * width, channels), "nearest")
        h = layers.conv(channels, (3, 3), padding=1)(h)

    h = nn.silu(group_norm(h.shape[-1])(h))
    return layers.conv(self.out_channels, (3, 3), padding=1, kernel_init=nn.initializers.zeros)(h)
