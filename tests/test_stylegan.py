"""Specification of StyleGAN2 (genjax.models.stylegan, genjax.trainers.stylegan, genjax.augment and
configs/stylegan2.py): the modulated convolution's closed forms, the noise inputs, the lazy regularisers' schedules,
the path-length mean, ADA's adaptive probability, DiffAugment, truncation and the refusal of bad settings. Tiny
networks (8-16 pixels, a few channels) keep the file within a few seconds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax.models import stylegan

_NHWC = ("NHWC", "HWIO", "NHWC")


def _modulation_inputs(batch=3, size=6, c_in=4, c_out=5):
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (batch, size, size, c_in))
  weight = jax.random.normal(keys[1], (3, 3, c_in, c_out))
  styles = jax.random.normal(keys[2], (batch, c_in)) * 3.0
  return x, weight, styles


def test_demodulation_is_the_inverse_norm_of_each_examples_modulated_kernel_and_normalises_the_output_scale():
  x, weight, styles = _modulation_inputs(batch=2, size=48, c_in=8)

  @jax.jit
  def coefficients_and_scales():
    kernels = weight[None] * styles[:, None, None, :, None]
    expected = 1.0 / jnp.sqrt(jnp.sum(kernels**2, axis=(1, 2, 3)))
    # Mean squares of each output feature map away from the zero-padded border.
    mean_square = lambda y: jnp.mean(y[:, 1:-1, 1:-1] ** 2, axis=(1, 2))
    scales = [mean_square(stylegan.modulated_conv(x, weight, styles * scale)) for scale in (0.1, 10.0)]
    undemodulated = mean_square(stylegan.modulated_conv(x, weight, styles * 10.0, demodulate=False))
    return stylegan.demodulation(weight, styles), expected, scales, undemodulated

  coefficients, expected, scales, undemodulated = coefficients_and_scales()
  np.testing.assert_allclose(coefficients, expected, rtol=1e-5)
  # Unit-variance independent inputs give every output feature map unit variance, whatever the style's scale.
  for mean_square in scales:
    np.testing.assert_allclose(mean_square, 1.0, atol=0.15)
  assert float(jnp.min(undemodulated)) > 100.0


def test_grouped_modulated_conv_equals_a_per_example_loop_and_the_batched_form():
  x, weight, styles = _modulation_inputs()

  @jax.jit
  def grouped_looped_and_batched():
    looped = []
    for index in range(x.shape[0]):
      kernel = weight * styles[index][None, None, :, None]
      kernel = kernel / jnp.sqrt(jnp.sum(kernel**2, axis=(0, 1, 2)))
      looped.append(lax.conv_general_dilated(x[index : index + 1], kernel, (1, 1), "SAME", dimension_numbers=_NHWC))
    batched = stylegan.modulated_conv(x, weight, styles, fused=False)
    return stylegan.modulated_conv(x, weight, styles), jnp.concatenate(looped), batched

  grouped, looped, batched = grouped_looped_and_batched()
  np.testing.assert_allclose(grouped, looped, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(grouped, batched, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_generator():
  generator = stylegan.Generator(8, 1, w_size=8, mapping_depth=2, channel_base=32, channel_max=8)
  latents = jax.random.normal(jax.random.key(1), (2, 8))
  return generator, latents, jax.jit(lambda key: generator.init(key, latents, None))(jax.random.key(2))


def test_noise_strength_zero_removes_the_noise_and_a_strength_adds_it(tiny_generator):
  generator, latents, variables = tiny_generator
  apply = jax.jit(lambda variables, key: generator.apply(variables, latents, None, key))
  first, second = apply(variables, jax.random.key(3)), apply(variables, jax.random.key(4))
  np.testing.assert_array_equal(first, second)  # Strengths start at 0.
  noisy = jax.tree_util.tree_map_with_path(
      lambda path, leaf: jnp.ones_like(leaf) if "noise_strength" in jax.tree_util.keystr(path) else leaf, variables
  )
  assert not np.allclose(apply(noisy, jax.random.key(3)), apply(noisy, jax.random.key(4)))


def test_generator_reads_one_w_per_layer_and_the_critic_one_logit_per_image(tiny_generator):
  generator, latents, variables = tiny_generator
  assert stylegan.num_ws(8) == 4 and stylegan.num_ws(32) == 8
  w = jax.jit(lambda: generator.apply(variables, latents, None, method=generator.map))()
  ws = jnp.repeat(w[:, None], stylegan.num_ws(8), axis=1)
  synthesize = jax.jit(lambda ws: generator.apply(variables, ws, method=generator.synthesize))
  images = synthesize(ws)
  assert images.shape == (2, 8, 8, 1)
  for index in range(4):  # Every one of the four ws is read.
    assert not np.allclose(images, synthesize(ws.at[:, index].set(-ws[:, index])))
  critic = stylegan.ResidualCritic(8, channel_base=32, channel_max=8, mbstd_group_size=2)

  @jax.jit
  def logits(images):
    return critic.apply(critic.init(jax.random.key(5), images, None, train=False), images, None, train=False)

  assert logits(images).shape == (2,)


def test_conditional_mapping_and_projection_critic_depend_on_the_label():
  latents, labels = jnp.zeros((2, 8)).at[:, 0].set(1.0), jnp.array([0, 1])
  critic = stylegan.ResidualCritic(8, channel_base=32, channel_max=8, num_classes=3, mbstd_group_size=2)
  images = jnp.zeros((2, 8, 8, 1))

  @jax.jit
  def w_and_logits():
    # The mapping alone: the synthesis network is not needed to see w depend on the label.
    mapping = stylegan.MappingNetwork(8, 1, 0.01, num_classes=3)
    w = mapping.apply(mapping.init(jax.random.key(0), latents, labels), latents, labels)
    critic_variables = critic.init(jax.random.key(1), images, labels, train=False)
    return w, critic.apply(critic_variables, images, labels, train=False)

  w, logits = w_and_logits()
  assert not np.allclose(w[0], w[1]) and not np.isclose(logits[0], logits[1])


def test_minibatch_stddev_is_the_mean_feature_deviation_of_each_examples_group():
  x = np.arange(4 * 2 * 2 * 3, dtype=np.float32).reshape(4, 2, 2, 3) ** 1.5
  y = jax.jit(stylegan.minibatch_stddev, static_argnums=1)(x, 2)
  for n in range(4):  # Groups {0, 2} and {1, 3}.
    group = x[[n % 2, n % 2 + 2]]
    np.testing.assert_allclose(y[n, ..., -1], np.mean(np.std(group, axis=0)), rtol=1e-4)
  np.testing.assert_array_equal(y[..., :3], x)


def test_fir_resampling_keeps_a_constant_image_constant_away_from_the_border():
  up, down = jax.jit(lambda: (stylegan.upsample_2x(jnp.ones((1, 6, 6, 2))), stylegan.downsample_2x(jnp.ones((1, 8, 8, 2)))))()
  assert up.shape == (1, 12, 12, 2) and down.shape == (1, 4, 4, 2)
  np.testing.assert_allclose(up[:, 2:-2, 2:-2], 1.0, rtol=1e-6)
  np.testing.assert_allclose(down[:, 1:-1, 1:-1], 1.0, rtol=1e-6)
