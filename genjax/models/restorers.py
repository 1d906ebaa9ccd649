"""Fully convolutional restoration networks, so that a model trained on patches restores images of any size.

- `DnCNN` (Zhang et al. 2017): `depth` 3x3 convolutions (batch normalisation between the inner ones) that predict
  the noise, which is subtracted from the input (residual learning). depth 17, 64 features is the paper's
  grey-level model; the runlocal config uses a smaller one.
- `SubPixelSR`: the ESPCN/SRResNet family for super-resolution by `scale`: convolutions at low resolution
  (residual blocks after a head), then sub-pixel convolutions (`layers.depth_to_space`) up to the high
  resolution, plus the bicubic upscale of the input, so the network learns the missing detail only.
- `SRResNet` (Ledig et al. 2017) and `RRDBNet` (Wang et al. 2018, ESRGAN): the super-resolution generators of the
  perceptual and adversarial recipe, as published: SRResNet's residual blocks with batch normalisation and PReLU
  and sub-pixel upsampling; ESRGAN's residual-in-residual dense blocks without normalisation, scaled by 0.2, and
  nearest-neighbour upsampling followed by a convolution. Neither adds the bicubic upscale.
- `SRCritic`: SRGAN's VGG-style critic (strided convolutions, batch normalisation, LeakyReLU, two dense layers),
  which sees high-resolution patches of the training size.
- `InpaintingUNet`: an encoder-decoder with skip connections over the image with its missing pixels zeroed and
  the mask as an extra channel (context encoders' conditioning); the output fills the holes and the known pixels
  are kept.

Images are NHWC floats in [0, 1]; every output is too (not clipped: losses see the raw prediction). The last layer
of DnCNN, SubPixelSR and InpaintingUNet starts at zero, so training starts from the identity, the bicubic upscale
or zero-filled holes, not from a random image: on a CPU budget that is hundreds of steps saved. SRResNet and
RRDBNet start as published; their adversarial training starts from a run trained on pixels (`config.init_from`).
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
    x = nn.relu(layers.conv(self.features, (3, 3))(noisy))
    for _ in range(self.depth - 2):
      x = layers.conv(self.features, (3, 3), use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    noise = layers.conv(noisy.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(x)  # Starts as the identity.
    return noisy - noise


class SubPixelSR(nn.Module):
  scale: int
  features: int = 64
  num_blocks: int = 4

  @nn.compact
  def __call__(self, low_resolution: jax.Array, train: bool) -> jax.Array:
    del train  # No batch statistics.
    channels = low_resolution.shape[-1]
    head = layers.conv(self.features, (5, 5))(low_resolution)
    x = head
    for _ in range(self.num_blocks):
      residual = layers.conv(self.features, (3, 3))(nn.relu(layers.conv(self.features, (3, 3))(x)))
      x = x + residual
    x = layers.conv(self.features, (3, 3))(x) + head
    factors = [2] * (self.scale.bit_length() - 1) if self.scale & (self.scale - 1) == 0 else [self.scale]
    for factor in factors:  # x2 and x4 as successive doublings (SRResNet), x3 in one step (ESPCN).
      x = nn.relu(layers.depth_to_space(layers.conv(self.features * factor * factor, (3, 3))(x), factor))
    detail = layers.conv(channels, (3, 3), kernel_init=nn.initializers.zeros)(x)  # Starts as bicubic upscaling.
    n, height, width, _ = low_resolution.shape
    upscaled = jax.image.resize(low_resolution, (n, height * self.scale, width * self.scale, channels), "bicubic")
    return upscaled + detail


def _doublings(scale: int) -> int:
  if scale not in (2, 4):
    raise ValueError(f"SRResNet and RRDBNet upscale by 2 or 4 (successive doublings), not {scale}.")
  return scale.bit_length() - 1


class SRResNet(nn.Module):
  """SRGAN's generator: 9x9 head, `num_blocks` residual blocks (conv-BN-PReLU-conv-BN), a long skip, a sub-pixel
  doubling per factor of 2 of `scale`, 9x9 tail. 16 blocks of 64 features as published."""

  scale: int = 4
  features: int = 64
  num_blocks: int = 16

  @nn.compact
  def __call__(self, low_resolution: jax.Array, train: bool) -> jax.Array:
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    prelu = lambda: nn.PReLU(negative_slope_init=0.25)  # torch's nn.PReLU() default.
    head = prelu()(layers.conv(self.features, (9, 9))(low_resolution))
    x = head
    for _ in range(self.num_blocks):
      residual = prelu()(norm()(layers.conv(self.features, (3, 3))(x)))
      x = x + norm()(layers.conv(self.features, (3, 3))(residual))
    x = head + norm()(layers.conv(self.features, (3, 3))(x))
    for _ in range(_doublings(self.scale)):
      x = prelu()(layers.depth_to_space(layers.conv(self.features * 4, (3, 3))(x), 2))
    return layers.conv(low_resolution.shape[-1], (9, 9))(x)


class _ResidualDenseBlock(nn.Module):
  features: int
  growth: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    inputs = [x]
    for _ in range(4):
      inputs.append(nn.leaky_relu(layers.conv(self.growth, (3, 3))(jnp.concatenate(inputs, axis=-1)), 0.2))
    return x + 0.2 * layers.conv(self.features, (3, 3))(jnp.concatenate(inputs, axis=-1))


class RRDBNet(nn.Module):
  """ESRGAN's generator: `num_blocks` residual-in-residual dense blocks (three dense blocks of five convolutions
  with `growth` channels each, residuals scaled by 0.2), a long skip, nearest-neighbour doublings each followed by
  a convolution, two tail convolutions. 23 blocks, 64 features, growth 32 as published."""

  scale: int = 4
  features: int = 64
  num_blocks: int = 23
  growth: int = 32

  @nn.compact
  def __call__(self, low_resolution: jax.Array, train: bool) -> jax.Array:
    del train  # No batch statistics.
    head = layers.conv(self.features, (3, 3))(low_resolution)
    x = head
    for _ in range(self.num_blocks):
      block_input = x
      for _ in range(3):
        x = _ResidualDenseBlock(self.features, self.growth)(x)
      x = block_input + 0.2 * x
    x = head + layers.conv(self.features, (3, 3))(x)
    for _ in range(_doublings(self.scale)):
      n, height, width, channels = x.shape
      x = jax.image.resize(x, (n, 2 * height, 2 * width, channels), "nearest")
      x = nn.leaky_relu(layers.conv(self.features, (3, 3))(x), 0.2)
    x = nn.leaky_relu(layers.conv(self.features, (3, 3))(x), 0.2)
    return layers.conv(low_resolution.shape[-1], (3, 3))(x)


class SRCritic(nn.Module):
  """SRGAN's critic: a 3x3 convolution and LeakyReLU, then seven conv-BN-LReLU layers whose strides alternate
  2, 1 from `features` to 8 x `features` channels, a dense layer of 16 x `features` and one logit per image.
  Called as `critic(images, conditioning, train=)`; it is unconditional, so `conditioning` is None."""

  features: int = 64

  @nn.compact
  def __call__(self, images: jax.Array, conditioning: None, train: bool) -> jax.Array:
    del conditioning
    x = nn.leaky_relu(layers.conv(self.features, (3, 3))(images), 0.2)
    widths = (1, 2, 2, 4, 4, 8, 8)
    for index, width in enumerate(widths):
      stride = 2 if index % 2 == 0 else 1
      x = layers.conv(self.features * width, (3, 3), strides=(stride, stride), use_bias=False)(x)
      x = nn.leaky_relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x), 0.2)
    x = nn.leaky_relu(nn.Dense(self.features * 16)(x.reshape(x.shape[0], -1)), 0.2)
    return nn.Dense(1)(x)[:, 0]


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
      x = nn.relu(layers.conv(features, (3, 3))(nn.relu(layers.conv(features, (3, 3))(x))))
      skips.append(x)
    for features, skip in zip(reversed(self.channels[:-1]), reversed(skips[:-1])):
      x = nn.relu(layers.depth_to_space(layers.conv(4 * features, (3, 3))(x), 2))  # Sub-pixel upsampling.
      x = nn.relu(layers.conv(features, (3, 3))(jnp.concatenate([x, skip], axis=-1)))
    filled = layers.conv(damaged.shape[-1], (1, 1), kernel_init=nn.initializers.zeros)(x)
    return known + mask * filled
