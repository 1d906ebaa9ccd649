"""Generators and discriminators (critics) for GANs: DCGAN, the 32x32 ResNet of WGAN-GP, and MLPs for 2-D data.

DCGAN (Radford et al. 2016) at any size `base_size * 2 ** len(channels)`: the MNIST pair of configs/gan.py is the
classic one (G: Dense 7x7x128 + BN + ReLU -> transposed conv 64, 4x4, stride 2 + BN + ReLU -> transposed conv to
the image channels + tanh; D: conv 64, 4x4, stride 2 + LeakyReLU 0.2 -> conv 128 + norm + LeakyReLU 0.2 -> Dense
1). Transposed convolutions use `layers.ConvTranspose`, whose kernel gradient avoids XLA's slow path on CPU, and
the critic's strided convolutions use `layers.Conv`, which keeps a gradient penalty's second derivative off it.

With `num_classes > 0` both networks are class-conditional: the generator appends a learned class embedding to
its latent vector, and the discriminator is a projection discriminator (Miyato & Koyama 2018), adding the inner
product of a class embedding with its last features to its output.

The ResNet pair is that of the WGAN-GP CIFAR-10 experiments (Gulrajani et al. 2017, appendix): the generator
maps a dense 4x4 feature map through residual blocks that each upsample 2x (nearest neighbour, then convolutions:
no transposed convolution, so no slow kernel gradient on CPU); the critic's first two residual blocks halve the
resolution with mean pooling and the rest keep it, then it pools globally.

The MLPs (ReLU hidden layers, linear output) are those of the WGAN-GP toy experiments, for 2-D points.

Discriminators return one logit (critic value) per example, `[N]`. Their activation normalisation is a constructor
argument: "batch" (DCGAN), "layer" or "none"; a critic trained with a gradient penalty must not use batch
normalisation, which makes each example's output depend on the others (Gulrajani et al. 2017). Independently,
`spectral_norm=True` divides every convolution and dense weight of the discriminator by its largest singular value
(Miyato et al. 2018), estimated by one power iteration per training step and kept in the `batch_stats` collection.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models import layers

# DCGAN's initialisation: weights from N(0, 0.02).
_dcgan_init = nn.initializers.normal(0.02)

NORMALIZATIONS = ("batch", "layer", "none")


class DCGANGenerator(nn.Module):
  """`[N, latent] (+ labels [N]) -> [N, base * 2^k, base * 2^k, out_channels]` images in [-1, 1]."""

  base_size: int
  channels: Sequence[int]
  out_channels: int
  num_classes: int = 0

  @nn.compact
  def __call__(self, latents: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    # No biases before batch normalisation, which subtracts them again (their gradient is zero).
    dense = nn.Dense(self.base_size * self.base_size * self.channels[0], use_bias=False, kernel_init=_dcgan_init)
    x = _feature_map(dense, latents, labels, self.num_classes, self.base_size)
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    for features in self.channels[1:]:
      x = layers.ConvTranspose(features, 4, 2, 1, use_bias=False, kernel_init=_dcgan_init)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    x = layers.ConvTranspose(self.out_channels, 4, 2, 1, kernel_init=_dcgan_init)(x)
    return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
  """`[N, H, W, C] (+ labels [N]) -> [N]` logits: stride-2 4x4 convolutions with LeakyReLU 0.2, the first
  unnormalised."""

  channels: Sequence[int]
  normalization: str = "batch"
  num_classes: int = 0
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    x = images
    for index, features in enumerate(self.channels):
      normalized = index > 0 and self.normalization != "none"
      conv = layers.Conv(features, 4, 2, 1, use_bias=not normalized, kernel_init=_dcgan_init)
      x = _weight_normalized(conv, x, self.spectral_norm, train)
      if index > 0:
        x = _normalize(x, self.normalization, train)
      x = nn.leaky_relu(x, 0.2)
    return _logits(layers.flatten(x), labels, self.num_classes, self.spectral_norm, train, _dcgan_init)


class ResNetGenerator(nn.Module):
  """`[N, latent] (+ labels [N]) -> [N, base * 2^k, base * 2^k, out_channels]` images in [-1, 1], one upsampling
  residual block per entry of `channels` (WGAN-GP's CIFAR-10 generator: base 4, channels (128, 128, 128))."""

  base_size: int
  channels: Sequence[int]
  out_channels: int
  num_classes: int = 0

  @nn.compact
  def __call__(self, latents: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    dense = nn.Dense(self.base_size * self.base_size * self.channels[0])
    x = _feature_map(dense, latents, labels, self.num_classes, self.base_size)
    for features in self.channels:
      x = _UpsamplingBlock(features)(x, train)
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    return jnp.tanh(layers.conv(self.out_channels, (3, 3))(x))


class _UpsamplingBlock(nn.Module):
  """BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus a 1x1 convolution of the upsampled input."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    shortcut = layers.conv(self.features, (1, 1))(_upsample_nearest(x))
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    x = layers.conv(self.features, (3, 3), use_bias=False)(_upsample_nearest(x))
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    return shortcut + layers.conv(self.features, (3, 3))(x)


class ResNetCritic(nn.Module):
  """`[N, H, W, C] (+ labels [N]) -> [N]` logits: residual blocks of `channels`, the first `num_downsampling`
  halving the resolution, then ReLU, a global mean pool and a dense layer (WGAN-GP's CIFAR-10 critic: channels
  (128, 128, 128, 128), two downsampling blocks, no normalisation)."""

  channels: Sequence[int]
  normalization: str = "none"
  num_classes: int = 0
  spectral_norm: bool = False
  num_downsampling: int = 2

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    x = images
    for index, features in enumerate(self.channels):
      block = _CriticBlock(features, index < self.num_downsampling, index == 0, self.normalization, self.spectral_norm)
      x = block(x, train)
    features = jnp.mean(nn.relu(x), axis=(1, 2))
    return _logits(features, labels, self.num_classes, self.spectral_norm, train, nn.linear.default_kernel_init)


class _CriticBlock(nn.Module):
  """(norm-ReLU-)conv3x3-norm-ReLU-conv3x3 plus a shortcut (1x1 convolution where the shape changes), then 2x2
  mean pooling if `downsample`. Pooling after the sum equals WGAN-GP's pooling of each path (both are linear)."""

  features: int
  downsample: bool
  acts_on_pixels: bool  # The first block: no activation before its first convolution (WGAN-GP's "optimised" block).
  normalization: str
  spectral_norm: bool

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = lambda size, inputs: _weight_normalized(
        layers.conv(self.features, (size, size)), inputs, self.spectral_norm, train
    )
    residual = x if self.acts_on_pixels else nn.relu(_normalize(x, self.normalization, train))
    residual = conv(3, residual)
    residual = conv(3, nn.relu(_normalize(residual, self.normalization, train)))
    shortcut = x if x.shape[-1] == self.features and not self.downsample else conv(1, x)
    x = shortcut + residual
    return nn.avg_pool(x, (2, 2), (2, 2)) if self.downsample else x


class MLPGenerator(nn.Module):
  """`[N, latent] (+ labels [N]) -> [N, out_size]` points: ReLU hidden layers of `hidden_sizes`, linear output."""

  hidden_sizes: Sequence[int]
  out_size: int
  num_classes: int = 0

  @nn.compact
  def __call__(self, latents: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    del train  # No batch statistics.
    x = latents
    if self.num_classes:
      x = jnp.concatenate([x, nn.Embed(self.num_classes, x.shape[-1])(labels)], axis=-1)
    for size in self.hidden_sizes:
      x = nn.relu(nn.Dense(size)(x))
    return nn.Dense(self.out_size)(x)


class MLPDiscriminator(nn.Module):
  """`[N, D] (+ labels [N]) -> [N]` logits: ReLU hidden layers of `hidden_sizes`, each optionally normalised."""

  hidden_sizes: Sequence[int]
  normalization: str = "none"
  num_classes: int = 0
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, points: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    x = points
    for size in self.hidden_sizes:
      x = _weight_normalized(nn.Dense(size), x, self.spectral_norm, train)
      x = nn.relu(_normalize(x, self.normalization, train))
    return _logits(x, labels, self.num_classes, self.spectral_norm, train, nn.linear.default_kernel_init)


def _feature_map(dense: nn.Module, latents, labels, num_classes: int, base_size: int) -> jax.Array:
  """The generator's first layer: latents (with a learned class embedding appended, for a conditional model)
  through `dense`, reshaped to a `[N, base_size, base_size, C]` feature map."""
  if num_classes:
    latents = jnp.concatenate([latents, nn.Embed(num_classes, latents.shape[-1])(labels)], axis=-1)
  return dense(latents).reshape(-1, base_size, base_size, dense.features // base_size**2)


def _upsample_nearest(x: jax.Array) -> jax.Array:
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _weight_normalized(layer: nn.Module, x: jax.Array, spectral_norm: bool, train: bool) -> jax.Array:
  """`layer(x)`, with the layer's weights divided by their spectral norm if asked (power iteration only when
  training, so inference is deterministic)."""
  return nn.SpectralNorm(layer)(x, update_stats=train) if spectral_norm else layer(x)


def _logits(features, labels, num_classes: int, spectral_norm: bool, train: bool, kernel_init) -> jax.Array:
  """A dense logit per example, plus, for a projection discriminator, the inner product of a learned class
  embedding with the features (Miyato & Koyama 2018)."""
  logits = _weight_normalized(nn.Dense(1, kernel_init=kernel_init), features, spectral_norm, train)[:, 0]
  if num_classes:
    logits += jnp.sum(nn.Embed(num_classes, features.shape[-1])(labels) * features, axis=-1)
  return logits


def _normalize(x: jax.Array, normalization: str, train: bool) -> jax.Array:
  if normalization == "batch":
    return nn.BatchNorm(use_running_average=not train)(x)
  if normalization == "layer":
    return nn.LayerNorm()(x)
  if normalization == "none":
    return x
  raise ValueError(f"Unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}.")
