"""Specification of genjax.losses: closed forms on fixed inputs."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax import losses


def test_kl_of_identical_gaussians_is_zero():
  mean = jnp.array([[0.3, -1.2, 2.0]])
  log_variance = jnp.array([[0.1, -0.5, 1.5]])
  np.testing.assert_allclose(losses.diagonal_gaussian_kl(mean, log_variance, mean, log_variance), [0.0], atol=1e-6)


def test_kl_between_univariate_gaussians_matches_closed_form():
  # KL(N(1, 2^2) || N(0, 1)) = log(1/2) + (4 + 1) / 2 - 1/2
  kl = losses.standard_normal_kl(jnp.array([[1.0]]), jnp.log(jnp.array([[4.0]])))
  np.testing.assert_allclose(kl, [math.log(0.5) + 2.5 - 0.5], rtol=1e-6)


def test_kl_sums_over_latent_dimensions_per_example():
  mean = jnp.array([[1.0, 1.0], [0.0, 0.0]])
  kl = losses.standard_normal_kl(mean, jnp.zeros_like(mean))
  np.testing.assert_allclose(kl, [1.0, 0.0], rtol=1e-6)  # 0.5 * |mean|^2 per example


def test_bernoulli_nll_on_known_values():
  logits = jnp.array([[0.0, 0.0, math.log(3.0)]])  # p = 0.5, 0.5, 0.75
  targets = jnp.array([[1.0, 0.0, 0.0]])
  expected = -(math.log(0.5) + math.log(0.5) + math.log(0.25))
  np.testing.assert_allclose(losses.bernoulli_nll(logits, targets), [expected], rtol=1e-6)


def test_bernoulli_nll_stays_finite_for_saturated_logits():
  nll = losses.bernoulli_nll(jnp.array([[100.0, -100.0]]), jnp.array([[0.0, 1.0]]))
  np.testing.assert_allclose(nll, [200.0], rtol=1e-6)


def test_discretized_logistic_is_a_distribution_over_the_256_bins():
  bins = jnp.linspace(-1.0, 1.0, 256).reshape(256, 1)
  for mean, log_scale in [(0.0, -2.0), (0.7, -4.0), (-0.99, -1.0), (0.2, -6.0)]:
    nll = losses.discretized_logistic_nll(jnp.full_like(bins, mean), jnp.full_like(bins, log_scale), bins)
    np.testing.assert_allclose(jnp.sum(jnp.exp(-nll)), 1.0, rtol=1e-4)


def test_discretized_logistic_bin_mass_matches_logistic_cdf():
  mean, scale, target = 0.1, 0.05, 0.2
  nll = losses.discretized_logistic_nll(jnp.array([[mean]]), jnp.log(jnp.array([[scale]])), jnp.array([[target]]))
  sigmoid = lambda x: 1 / (1 + math.exp(-x))
  half_bin = 1 / 255
  expected = sigmoid((target + half_bin - mean) / scale) - sigmoid((target - half_bin - mean) / scale)
  np.testing.assert_allclose(jnp.exp(-nll), [expected], rtol=1e-4)


def test_squared_error_sums_per_example():
  np.testing.assert_allclose(losses.squared_error(jnp.ones((2, 3)), jnp.zeros((2, 3))), [3.0, 3.0])


def test_bits_per_dim_converts_nats():
  np.testing.assert_allclose(losses.bits_per_dim(jnp.array(784 * math.log(2.0)), 784), 1.0, rtol=1e-6)


def test_losses_are_differentiable_everywhere_on_the_pixel_grid():
  bins = jnp.linspace(-1.0, 1.0, 256).reshape(1, 256)
  grad = jax.grad(lambda m: jnp.sum(losses.discretized_logistic_nll(m, jnp.full_like(m, -3.0), bins)))(
      jnp.zeros((1, 256))
  )
  assert np.all(np.isfinite(grad))
