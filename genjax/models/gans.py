"""Generators and discriminators for GANs.

DCGAN (Radford et al. 2016) at any size `base_size * 2 ** len(channels)`: the MNIST pair of configs/gan.py is the
classic one (G: Dense 7x7x128 + BN + ReLU -> transposed conv 64, 4x4, stride 2 + BN + ReLU -> transposed conv to
the image channels + tanh; D: conv 64, 4x4, stride 2 + LeakyReLU 0.2 -> conv 128 + norm + LeakyReLU 0.2 -> Dense
1). Transposed convolutions use `layers.ConvTranspose`, whose kernel gradient avoids XLA's slow path on CPU.

With `num_classes > 0` both networks are class-conditional: the generator appends a learned class embedding to
its latent vector, and the discriminator is a projection discriminator (Miyato & Koyama 2018), adding the inner
product of a class embedding with its last features to its output.

Discriminators return one logit (critic value) per image, `[N]`. Their normalisation is a constructor argument:
"batch" (DCGAN), "layer" or "none"; a critic trained with a gradient penalty must not use batch normalisation,
which makes each example's output depend on the others (Gulrajani et al. 2017).
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
    if self.num_classes:
      latents = jnp.concatenate([latents, nn.Embed(self.num_classes, latents.shape[-1])(labels)], axis=-1)
    # No biases before batch normalisation, which subtracts them again (their gradient is zero).
    x = nn.Dense(self.base_size * self.base_size * self.channels[0], use_bias=False, kernel_init=_dcgan_init)(latents)
    x = x.reshape(-1, self.base_size, self.base_size, self.channels[0])
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

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    x = images
    for index, features in enumerate(self.channels):
      normalized = index > 0 and self.normalization != "none"
      x = nn.Conv(features, (4, 4), strides=2, padding=1, use_bias=not normalized, kernel_init=_dcgan_init)(x)
      if index > 0:
        x = _normalize(x, self.normalization, train)
      x = nn.leaky_relu(x, 0.2)
    features = layers.flatten(x)
    logits = nn.Dense(1, kernel_init=_dcgan_init)(features)[:, 0]
    if self.num_classes:
      logits += jnp.sum(nn.Embed(self.num_classes, features.shape[-1])(labels) * features, axis=-1)
    return logits


def _normalize(x: jax.Array, normalization: str, train: bool) -> jax.Array:
  if normalization == "batch":
    return nn.BatchNorm(use_running_average=not train)(x)
  if normalization == "layer":
    return nn.LayerNorm()(x)
  if normalization == "none":
    return x
  raise ValueError(f"Unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}.")
