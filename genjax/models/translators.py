"""Image-to-image translation networks, as in the reference implementation of pix2pix and CycleGAN
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py), layer for layer:

- `UNetGenerator` (pix2pix, Isola et al. 2017): `num_downs` 4x4 stride-2 convolutions down to 1x1 at the
  bottleneck (8 for `unet_256`, 7 for `unet_128`), mirrored by 4x4 stride-2 transposed convolutions, each decoder
  level concatenated with the encoder level of its size; LeakyReLU 0.2 down, ReLU up, normalisation on every level
  but the outermost and the innermost encoder convolution, dropout 0.5 on the decoder levels of 8 * `features`
  channels below the three outer ones (three of them in `unet_256`), tanh out.
- `ResNetGenerator` (CycleGAN, Zhu et al. 2017, after Johnson et al. 2016): a reflection-padded 7x7 convolution,
  two 3x3 stride-2 convolutions, `num_blocks` residual blocks (reflection padding; 9 at 256 px, 6 at 128 px), two
  3x3 stride-2 transposed convolutions (output padding 1: exact doubling), a reflection-padded 7x7 convolution to
  the image, tanh.
- `PatchDiscriminator` (the "70x70 PatchGAN", `NLayerDiscriminator`): `num_layers` 4x4 stride-2 convolutions, one
  of stride 1, and a 1-channel 4x4 convolution: one logit per overlapping patch of the input, `[N, h, w, 1]`. Given
  a conditioning image it sees that image and its input side by side in channels (pix2pix's conditional critic).

Normalisation (`norm`) is "batch" (pix2pix's default; PyTorch's momentum 0.1 is flax's 0.9) or "instance"
(CycleGAN's: per image and channel, without learned scale or bias, as the reference's `affine=False`). Convolutions
followed by a normalisation have no bias unless it is instance normalisation (the reference's `use_bias`). Weights
start from N(0, 0.02), batch normalisation's scale from N(1, 0.02) (the reference's `init_weights('normal')`).

Upsampling uses `layers.ConvTranspose`, whose kernel gradient avoids XLA's slow path on CPU. Images are NHWC in
[-1, 1]; every network is fully convolutional (trained on crops, applied to images of any size that its
`multiple` divides).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models import layers

NORMS = ("batch", "instance")

_init = nn.initializers.normal(0.02)


def _scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _normalize(x: jax.Array, norm: str, train: bool) -> jax.Array:
  if norm == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=_scale_init)(x)
  return nn.GroupNorm(num_groups=None, group_size=1, epsilon=1e-5, use_bias=False, use_scale=False)(x)


def _conv(features: int, kernel: int, stride: int, padding: int, use_bias: bool) -> nn.Conv:
  return layers.conv(
      features, (kernel, kernel), (stride, stride), padding=[(padding, padding)] * 2, use_bias=use_bias,
      kernel_init=_init,
  )


def _reflect(x: jax.Array, pad: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class UNetGenerator(nn.Module):
  """`[N, H, W, C_in] -> [N, H, W, out_channels]` in [-1, 1]; H and W multiples of 2 ** num_downs."""

  out_channels: int
  num_downs: int = 8
  features: int = 64
  norm: str = "batch"
  dropout: float = 0.5

  @property
  def multiple(self) -> int:
    return 2**self.num_downs

  @nn.compact
  def __call__(self, images: jax.Array, train: bool) -> jax.Array:
    count, biased = self.num_downs, self.norm == "instance"
    widths = [self.features * min(2**level, 8) for level in range(count)]
    levels, x = [], images  # levels[i]: the input of level i (the image, then each encoder output).
    for level, width in enumerate(widths):
      levels.append(x)
      if level:
        x = nn.leaky_relu(x, 0.2)
      x = _conv(width, 4, 2, 1, use_bias=biased)(x)
      if 0 < level < count - 1:  # Neither the outermost nor the innermost encoder convolution is normalised.
        x = _normalize(x, self.norm, train)
    for level in reversed(range(count)):
      outermost = level == 0
      features = self.out_channels if outermost else widths[level - 1]
      x = layers.ConvTranspose(features, 4, 2, 1, use_bias=outermost or biased, kernel_init=_init)(nn.relu(x))
      if outermost:
        return jnp.tanh(x)
      x = _normalize(x, self.norm, train)
      if self.dropout and 4 <= level <= count - 2:  # The levels of 8 * features channels below the outer three.
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = jnp.concatenate([levels[level], x], axis=-1)


class ResNetGenerator(nn.Module):
  """`[N, H, W, C_in] -> [N, H, W, out_channels]` in [-1, 1]; H and W multiples of 4."""

  out_channels: int
  num_blocks: int = 9
  features: int = 64
  norm: str = "instance"
  dropout: float = 0.0

  multiple = 4

  @nn.compact
  def __call__(self, images: jax.Array, train: bool) -> jax.Array:
    biased = self.norm == "instance"
    x = _conv(self.features, 7, 1, 0, use_bias=biased)(_reflect(images, 3))
    x = nn.relu(_normalize(x, self.norm, train))
    for multiple in (2, 4):
      x = nn.relu(_normalize(_conv(self.features * multiple, 3, 2, 1, use_bias=biased)(x), self.norm, train))
    for _ in range(self.num_blocks):
      y = nn.relu(_normalize(_conv(self.features * 4, 3, 1, 0, use_bias=biased)(_reflect(x, 1)), self.norm, train))
      if self.dropout:
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
      x = x + _normalize(_conv(self.features * 4, 3, 1, 0, use_bias=biased)(_reflect(y, 1)), self.norm, train)
    for multiple in (2, 1):
      up = layers.ConvTranspose(self.features * multiple, 3, 2, 1, biased, _init, output_padding=1)
      x = nn.relu(_normalize(up(x), self.norm, train))
    return jnp.tanh(_conv(self.out_channels, 7, 1, 0, use_bias=True)(_reflect(x, 3)))


class PatchDiscriminator(nn.Module):
  """`[N, H, W, C]` (and a conditioning image `[N, H, W, C']` or None) -> patch logits `[N, h, w, 1]`; with
  num_layers = 3 each logit sees a 70x70 patch."""

  features: int = 64
  num_layers: int = 3
  norm: str = "batch"

  @nn.compact
  def __call__(self, images: jax.Array, conditioning: jax.Array | None, train: bool) -> jax.Array:
    x = images if conditioning is None else jnp.concatenate([conditioning, images], axis=-1)
    x = nn.leaky_relu(_conv(self.features, 4, 2, 1, use_bias=True)(x), 0.2)
    for layer in range(1, self.num_layers + 1):
      stride = 2 if layer < self.num_layers else 1
      x = _conv(self.features * min(2**layer, 8), 4, stride, 1, use_bias=self.norm == "instance")(x)
      x = nn.leaky_relu(_normalize(x, self.norm, train), 0.2)
    return _conv(1, 4, 1, 1, use_bias=True)(x)
