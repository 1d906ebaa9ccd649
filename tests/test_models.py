"""Specification of genjax.models: shapes, and the sub-pixel upsampling layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models import autoencoders
from genjax.models import layers


@pytest.mark.parametrize("architecture", autoencoders.ARCHITECTURES)
@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3)])
def test_vae_output_shapes(architecture, image_shape):
  encoder, decoder = autoencoders.encoder_decoder(architecture, (8, 16), 2 * 5, (*image_shape[:2], 2))
  model = autoencoders.VAE(encoder, decoder)
  images = jnp.zeros((3, *image_shape))
  params = model.init(jax.random.key(0), images, jax.random.key(1))
  outputs, mean, log_variance = model.apply(params, images, jax.random.key(2))
  assert outputs.shape == (3, *image_shape[:2], 2)
  assert mean.shape == log_variance.shape == (3, 5)
  decoded = model.apply(params, jnp.zeros((7, 5)), method=autoencoders.VAE.decode)
  assert decoded.shape == (7, *image_shape[:2], 2)


@pytest.mark.parametrize("architecture", autoencoders.ARCHITECTURES)
def test_autoencoder_reconstructs_input_shape(architecture):
  encoder, decoder = autoencoders.encoder_decoder(architecture, (8, 16), 6, (28, 28, 1))
  model = autoencoders.Autoencoder(encoder, decoder)
  images = jnp.zeros((2, 28, 28, 1))
  params = model.init(jax.random.key(0), images)
  assert model.apply(params, images).shape == (2, 28, 28, 1)
  assert model.apply(params, images, method=autoencoders.Autoencoder.encode).shape == (2, 6)


def test_vae_sample_uses_the_posterior_of_each_image():
  encoder, decoder = autoencoders.encoder_decoder("mlp", (8,), 2 * 3, (4, 4, 1))
  model = autoencoders.VAE(encoder, decoder)
  images = jax.random.uniform(jax.random.key(0), (2, 4, 4, 1))
  params = model.init(jax.random.key(1), images, jax.random.key(2))
  same_key = [model.apply(params, images, jax.random.key(3))[0] for _ in range(2)]
  other_key = model.apply(params, images, jax.random.key(4))[0]
  np.testing.assert_array_equal(same_key[0], same_key[1])
  assert not np.allclose(same_key[0], other_key)


def test_depth_to_space_inverts_space_to_depth():
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  # Space-to-depth in TF's channel order: [N, H/2, 2, W/2, 2, C] -> [N, H/2, W/2, 2*2*C].
  blocks = x.reshape(2, 2, 2, 3, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 2, 3, 12)
  np.testing.assert_array_equal(layers.depth_to_space(blocks, 2), x)


def test_upsample2x_doubles_height_and_width():
  layer = layers.Upsample2x(features=5)
  x = jnp.ones((2, 7, 7, 3))
  params = layer.init(jax.random.key(0), x)
  assert layer.apply(params, x).shape == (2, 14, 14, 5)


@pytest.mark.parametrize(
    "kernel_size, stride, padding, size", [(4, 2, 1, 7), (4, 2, 1, 14), (3, 1, 1, 5), (5, 2, 2, 4)]
)
def test_fast_conv_transpose_vjp_matches_autodiff_of_the_plain_layer(kernel_size, stride, padding, size):
  x = jax.random.normal(jax.random.key(0), (3, size, size, 5))
  kernel = jax.random.normal(jax.random.key(1), (kernel_size, kernel_size, 5, 4))
  plain = lambda x, k: layers._conv_transpose(x, k, stride, padding)
  fast = lambda x, k: layers.conv_transpose(x, k, stride, padding)
  y_plain, vjp_plain = jax.vjp(plain, x, kernel)
  y_fast, vjp_fast = jax.vjp(fast, x, kernel)
  np.testing.assert_allclose(y_fast, y_plain, rtol=1e-5, atol=1e-5)
  dy = jax.random.normal(jax.random.key(2), y_plain.shape)
  for fast_grad, plain_grad in zip(vjp_fast(dy), vjp_plain(dy)):
    np.testing.assert_allclose(fast_grad, plain_grad, rtol=1e-4, atol=1e-4)


def test_conv_transpose_has_pytorch_geometry():
  layer = layers.ConvTranspose(features=64, kernel_size=4, stride=2, padding=1)
  x = jnp.ones((2, 7, 7, 128))
  params = layer.init(jax.random.key(0), x)
  assert layer.apply(params, x).shape == (2, 14, 14, 64)  # (7 - 1) * 2 - 2 * 1 + 4 = 14
