"""Fully convolutional restoration networks, so that a model trained on patches restores images of any size.

- `DnCNN` (Zhang et al. 2017): `depth` 3x3 convolutions (batch normalisation between the inner ones) that predict
  the noise, which is subtracted from the input (residual learning). depth 17, 64 features is the paper's
  grey-level model; the runlocal config uses a smaller one.
- `SubPixelSR`: the ESPCN/SRResNet family for super-resolution by `scale`: convolutions at low resolution
  (residual blocks after a head), then sub-pixel convolutions (`layers.depth_to_space`) up to the high
  resolution, plus the bicubic upscale of the input, so the network learns the missing detail only.
- `InpaintingUNet`: an encoder-decoder with skip connections over the image with its missing pixels zeroed and
  the mask as an extra channel (context encoders' conditioning); the output fills the holes and the known pixels
  are kept.

Images are NHWC floats in [0, 1]; every output is too (not clipped: losses see the raw prediction). Each network's
last layer starts at zero, so training starts from the identity (DnCNN), the bicubic upscale (SubPixelSR) or
zero-filled holes, not from a random image: on a CPU budget that is hundreds of steps saved.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models import layers


class DnCNN(nn.Module):
  depth: int = 17
  features: int = 64

  @nn.compact
  def __call__(self, noisy: jax.Array, train: bool) -> jax.Array:
    x = nn.relu(nn.Conv(self.features, (3, 3))(noisy))
    for _ in range(self.depth - 2):
      x = nn.Conv(self.features, (3, 3), use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    noise = nn.Conv(noisy.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(x)  # Starts as the identity.
    return noisy - noise


class SubPixelSR(nn.Module):
  scale: int
  features: int = 64
  num_blocks: int = 4

  @nn.compact
  def __call__(self, low_resolution: jax.Array, train: bool) -> jax.Array:
    del train  # No batch statistics.
    channels = low_resolution.shape[-1]
    head = nn.Conv(self.features, (5, 5))(low_resolution)
    x = head
    for _ in range(self.num_blocks):
      residual = nn.Conv(self.features, (3, 3))(nn.relu(nn.Conv(self.features, (3, 3))(x)))
      x = x + residual
    x = nn.Conv(self.features, (3, 3))(x) + head
    factors = [2] * (self.scale.bit_length() - 1) if self.scale & (self.scale - 1) == 0 else [self.scale]
    for factor in factors:  # x2 and x4 as successive doublings (SRResNet), x3 in one step (ESPCN).
      x = nn.relu(layers.depth_to_space(nn.Conv(self.features * factor * factor, (3, 3))(x), factor))
    detail = nn.Conv(channels, (3, 3), kernel_init=nn.initializers.zeros)(x)  # Starts as bicubic upscaling.
    n, height, width, _ = low_resolution.shape
    upscaled = jax.image.resize(low_resolution, (n, height * self.scale, width * self.scale, channels), "bicubic")
    return upscaled + detail


class InpaintingUNet(nn.Module):
  channels: Sequence[int] = (32, 64, 128)

  @nn.compact
  def __call__(self, damaged: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
    """`damaged` images (any values under the mask) and `mask` `[N, H, W, 1]` (1: missing) -> the restored image,
    equal to the input where pixels are known. H and W must be multiples of 2 ** (len(channels) - 1)."""
    del train
    known = damaged * (1.0 - mask)
    x = jnp.concatenate([known, mask], axis=-1)
    skips = []
    for index, features in enumerate(self.channels):
      if index:
        x = nn.max_pool(x, (2, 2), (2, 2))
      x = nn.relu(nn.Conv(features, (3, 3))(nn.relu(nn.Conv(features, (3, 3))(x))))
      skips.append(x)
    for features, skip in zip(reversed(self.channels[:-1]), reversed(skips[:-1])):
      x = nn.relu(layers.depth_to_space(nn.Conv(4 * features, (3, 3))(x), 2))  # Sub-pixel upsampling.
      x = nn.relu(nn.Conv(features, (3, 3))(jnp.concatenate([x, skip], axis=-1)))
    filled = nn.Conv(damaged.shape[-1], (1, 1), kernel_init=nn.initializers.zeros)(x)
    return known + mask * filled
