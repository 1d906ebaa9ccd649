"""Specification of genjax.models: shapes, the fast upsampling layers, the GAN networks and spectral normalisation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models import autoencoders
from genjax.models import gans
from genjax.models import layers


@pytest.mark.parametrize("architecture", autoencoders.ARCHITECTURES)
@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3)])
def test_vae_output_shapes(architecture, image_shape):
  encoder, decoder = autoencoders.encoder_decoder(architecture, (8, 16), 2 * 5, (*image_shape[:2], 2))
  model = autoencoders.VAE(encoder, decoder)
  images = jnp.zeros((3, *image_shape))
  # Shapes alone (jax.eval_shape): nothing is compiled or run.
  params = jax.eval_shape(model.init, jax.random.key(0), images, jax.random.key(1))
  outputs, mean, log_variance = jax.eval_shape(model.apply, params, images, jax.random.key(2))
  assert outputs.shape == (3, *image_shape[:2], 2)
  assert mean.shape == log_variance.shape == (3, 5)
  decoded = jax.eval_shape(lambda p, z: model.apply(p, z, method=autoencoders.VAE.decode), params, jnp.zeros((7, 5)))
  assert decoded.shape == (7, *image_shape[:2], 2)


@pytest.mark.parametrize("architecture", autoencoders.ARCHITECTURES)
def test_autoencoder_reconstructs_input_shape(architecture):
  encoder, decoder = autoencoders.encoder_decoder(architecture, (8, 16), 6, (28, 28, 1))
  model = autoencoders.Autoencoder(encoder, decoder)
  images = jnp.zeros((2, 28, 28, 1))
  params = jax.eval_shape(model.init, jax.random.key(0), images)  # Shapes alone: nothing is compiled or run.
  assert jax.eval_shape(model.apply, params, images).shape == (2, 28, 28, 1)
  encode = lambda p, x: model.apply(p, x, method=autoencoders.Autoencoder.encode)
  assert jax.eval_shape(encode, params, images).shape == (2, 6)


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


@pytest.mark.parametrize(
    "kernel_size, stride, padding, size", [(4, 2, 1, 28), (4, 2, 1, 14), (3, 2, 1, 8), (4, 2, 1, 9)]
)
def test_fast_strided_conv_matches_autodiff_to_second_order(kernel_size, stride, padding, size):
  # (4, 2, 1, 9): 9 + 2 - 4 is odd, the shape that falls back to XLA's rule.
  x = jax.random.normal(jax.random.key(0), (3, size, size, 5))
  kernel = jax.random.normal(jax.random.key(1), (kernel_size, kernel_size, 5, 4))

  def penalty(conv, kernel):
    """A gradient penalty's shape: the squared norm of an input gradient, a function of the kernel."""
    input_grad = jax.grad(lambda x: jnp.sum(jnp.tanh(conv(x, kernel, stride, padding))))(x)
    return jnp.sum(input_grad**2)

  plain_value, plain_grad = jax.value_and_grad(lambda k: penalty(layers._strided_correlation, k))(kernel)
  fast_value, fast_grad = jax.value_and_grad(lambda k: penalty(layers.strided_conv, k))(kernel)
  np.testing.assert_allclose(fast_value, plain_value, rtol=1e-4)
  np.testing.assert_allclose(fast_grad, plain_grad, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "kernel_size, padding, channels",
    [
        ((3, 3), 1, (5, 6)),
        ((4, 4), "SAME", (5, 6)),
        ((3, 3), "VALID", (5, 6)),
        ((1, 1), 0, (5, 6)),
        ((3, 2), ((0, 2), (1, 0)), (5, 6)),
        ((3, 3), 1, (128, 128)),
    ],
)
def test_conv_computes_nn_convs_gradients_by_kernel_taps_to_second_order(monkeypatch, kernel_size, padding, channels):
  # Every size takes the tap-wise kernel gradient here; (128, 128) channels take its one-product form.
  monkeypatch.setattr(layers, "_TAPS_MIN_MULTIPLY_ADDS", 0)
  in_channels, out_channels = channels
  x = jax.random.normal(jax.random.key(0), (3, 9, 8, in_channels))
  plain = nn.Conv(out_channels, kernel_size, padding=padding)
  fast = layers.conv(out_channels, kernel_size, padding=padding)
  params = plain.init(jax.random.key(1), x)
  assert jax.tree.structure(fast.init(jax.random.key(1), x)) == jax.tree.structure(params)

  def loss(layer, params, x):
    return jnp.sum(jnp.tanh(layer.apply(params, x)) ** 2)

  def penalty(layer, params):
    """A gradient penalty's shape: the squared norm of an input gradient, a function of the weights."""
    return jnp.sum(jax.grad(lambda x: loss(layer, params, x))(x) ** 2)

  for function in (loss, lambda layer, params, x: penalty(layer, params)):
    plain_grads = jax.grad(function, argnums=(1, 2))(plain, params, x)
    fast_grads = jax.grad(function, argnums=(1, 2))(fast, params, x)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max()), fast_grads, plain_grads
    )


def test_conv_takes_xlas_rule_for_small_strided_and_dilated_convolutions(monkeypatch):
  def takes_the_taps(strides, **kwargs) -> bool:
    convolve = lambda kernel: layers.conv_general_dilated(
        jnp.ones((2, 8, 8, 3)), kernel, strides, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), **kwargs
    )
    return "custom_vjp" in str(jax.make_jaxpr(convolve)(jnp.ones((3, 3, 3, 4))))

  assert not takes_the_taps((1, 1))  # Too small to gain.
  monkeypatch.setattr(layers, "_TAPS_MIN_MULTIPLY_ADDS", 0)
  assert takes_the_taps((1, 1))
  assert not takes_the_taps((2, 2))
  assert not takes_the_taps((1, 1), rhs_dilation=(2, 2))


def test_conv_transpose_has_pytorch_geometry():
  layer = layers.ConvTranspose(features=64, kernel_size=4, stride=2, padding=1)
  x = jnp.ones((2, 7, 7, 128))
  params = layer.init(jax.random.key(0), x)
  assert layer.apply(params, x).shape == (2, 14, 14, 64)  # (7 - 1) * 2 - 2 * 1 + 4 = 14


def test_resnet_pair_maps_latents_to_32x32_images_and_images_to_logits():
  generator = gans.ResNetGenerator(4, (8, 8, 8), out_channels=3)
  latents = jax.random.normal(jax.random.key(0), (2, 16))
  g_variables = jax.jit(lambda: generator.init(jax.random.key(1), latents, None, train=False))()
  images = jax.jit(lambda variables: generator.apply(variables, latents, None, train=False))(g_variables)
  assert images.shape == (2, 32, 32, 3)
  assert float(jnp.abs(images).max()) <= 1.0
  critic = gans.ResNetCritic((8, 8, 8, 8))
  d_variables = jax.eval_shape(lambda: critic.init(jax.random.key(2), images, None, train=False))
  assert jax.eval_shape(lambda v: critic.apply(v, images, None, train=False), d_variables).shape == (2,)


def test_resnet_generator_has_no_transposed_convolution():
  generator = gans.ResNetGenerator(4, (8, 8, 8), out_channels=3)
  variables = jax.eval_shape(lambda: generator.init(jax.random.key(0), jnp.zeros((1, 16)), None, train=False))
  jaxpr = str(jax.make_jaxpr(lambda v: generator.apply(v, jnp.zeros((1, 16)), None, train=False))(variables))
  assert "lhs_dilation=(1, 1)" in jaxpr and "lhs_dilation=(2, 2)" not in jaxpr


def test_mlp_pair_maps_latents_to_points_and_points_to_logits():
  generator = gans.MLPGenerator((8, 8), out_size=2)
  latents = jnp.ones((5, 2))
  # Shapes alone (jax.eval_shape): nothing is compiled or run.
  variables = jax.eval_shape(lambda: generator.init(jax.random.key(0), latents, None, train=False))
  points = jax.eval_shape(lambda v: generator.apply(v, latents, None, train=False), variables)
  assert points.shape == (5, 2)
  discriminator = gans.MLPDiscriminator((8, 8))
  variables = jax.eval_shape(lambda: discriminator.init(jax.random.key(1), jnp.ones((5, 2)), None, train=False))
  logits = jax.eval_shape(lambda v: discriminator.apply(v, jnp.ones((5, 2)), None, train=False), variables)
  assert logits.shape == (5,)


@pytest.mark.parametrize(
    "discriminator, inputs",
    [
        (gans.MLPDiscriminator((16, 16), spectral_norm=True), jnp.ones((4, 2))),
        (gans.DCGANDiscriminator((4, 8), "layer", spectral_norm=True), jnp.ones((4, 28, 28, 1))),
    ],
)
def test_spectral_norm_estimates_converge_to_each_weights_largest_singular_value(discriminator, inputs):
  variables = jax.jit(lambda: discriminator.init(jax.random.key(0), inputs, None, train=False))()
  update = jax.jit(lambda v: discriminator.apply(v, inputs, None, train=True, mutable=["batch_stats"])[1])
  for _ in range(100):  # One power iteration per training step.
    variables = {"params": variables["params"], **update(variables)}
  stats = jax.tree_util.tree_flatten_with_path(variables["batch_stats"])[0]
  sigmas = {jax.tree_util.keystr(path): float(value) for path, value in stats if "sigma" in jax.tree_util.keystr(path)}
  kernels = [w for path, w in jax.tree_util.tree_flatten_with_path(variables["params"])[0] if "kernel" in str(path)]
  true_sigmas = sorted(float(np.linalg.svd(np.reshape(w, (-1, w.shape[-1])), compute_uv=False)[0]) for w in kernels)
  assert len(sigmas) == len(kernels)
  np.testing.assert_allclose(sorted(sigmas.values()), true_sigmas, rtol=5e-3)
