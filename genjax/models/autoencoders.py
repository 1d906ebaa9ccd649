"""Encoders, decoders and the autoencoder and VAE modules built from them.

Images are NHWC floats in the data pipeline's pixel range. Decoders return per-pixel parameters of the
likelihood (`out_channels` of them per position), never pixels: the trainer decides what they mean. The VAE takes
its reparameterisation key as an argument, so `apply` stays a pure function of (params, images, key).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models import layers


class MLPEncoder(nn.Module):
  """`[N, H, W, C] -> [N, output_size]` through fully connected layers."""

  hidden_sizes: Sequence[int]
  output_size: int

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = layers.flatten(images)
    for size in self.hidden_sizes:
      x = nn.silu(nn.Dense(size)(x))
    return nn.Dense(self.output_size)(x)


class MLPDecoder(nn.Module):
  """`[N, latent] -> [N, H, W, out_channels]` through fully connected layers."""

  hidden_sizes: Sequence[int]
  output_shape: Sequence[int]

  @nn.compact
  def __call__(self, latents: jax.Array) -> jax.Array:
    x = latents
    for size in reversed(self.hidden_sizes):
      x = nn.silu(nn.Dense(size)(x))
    height, width, channels = self.output_shape
    return nn.Dense(height * width * channels)(x).reshape(-1, height, width, channels)


class ConvEncoder(nn.Module):
  """`[N, H, W, C] -> [N, output_size]`: one stride-2 3x3 convolution per entry of `channels`, then a dense layer."""

  channels: Sequence[int]
  output_size: int

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images
    for features in self.channels:
      x = nn.silu(layers.conv(features, (3, 3), strides=2, padding="SAME")(x))
    return nn.Dense(self.output_size)(layers.flatten(x))


class ConvDecoder(nn.Module):
  """`[N, latent] -> [N, H, W, out_channels]`, mirroring `ConvEncoder` with sub-pixel upsampling.

  H and W must be divisible by 2 ** len(channels); the first entry of `channels` is the lowest resolution's width.
  """

  channels: Sequence[int]
  output_shape: Sequence[int]

  @nn.compact
  def __call__(self, latents: jax.Array) -> jax.Array:
    height, width, out_channels = self.output_shape
    factor = 2 ** len(self.channels)
    x = nn.Dense((height // factor) * (width // factor) * self.channels[0])(latents)
    x = nn.silu(x).reshape(-1, height // factor, width // factor, self.channels[0])
    for features in self.channels:
      x = nn.silu(layers.Upsample2x(features)(x))
    return layers.conv(out_channels, (3, 3), padding="SAME")(x)


class Autoencoder(nn.Module):
  """Deterministic autoencoder: images -> code -> decoder outputs."""

  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, images: jax.Array) -> jax.Array:
    return self.decode(self.encode(images))

  def encode(self, images: jax.Array) -> jax.Array:
    return self.encoder(images)

  def decode(self, codes: jax.Array) -> jax.Array:
    return self.decoder(codes)


class VAE(nn.Module):
  """VAE with a diagonal-Gaussian posterior q(z|x) = N(mean, exp(log_variance)) and a N(0, I) prior.

  The encoder must output `2 * latent_size` features: the posterior mean, then its log-variance.
  """

  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, images: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Returns (decoder outputs, posterior mean, posterior log-variance) for one reparameterised sample."""
    mean, log_variance = self.encode(images)
    latents = mean + jnp.exp(0.5 * log_variance) * jax.random.normal(key, mean.shape, mean.dtype)
    return self.decode(latents), mean, log_variance

  def encode(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean, log_variance = jnp.split(self.encoder(images), 2, axis=-1)
    return mean, log_variance

  def decode(self, latents: jax.Array) -> jax.Array:
    return self.decoder(latents)


ARCHITECTURES = ("mlp", "conv")


def encoder_decoder(
    architecture: str, widths: Sequence[int], code_size: int, decoder_output_shape: Sequence[int]
) -> tuple[nn.Module, nn.Module]:
  """The encoder/decoder pair of an architecture: `widths` are hidden sizes (mlp) or channels (conv)."""
  if architecture == "mlp":
    return MLPEncoder(widths, code_size), MLPDecoder(widths, decoder_output_shape)
  if architecture == "conv":
    return ConvEncoder(widths, code_size), ConvDecoder(tuple(reversed(widths)), decoder_output_shape)
  raise ValueError(f"Unknown architecture {architecture!r}; expected one of {ARCHITECTURES}.")
