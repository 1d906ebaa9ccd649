"""Specification of genjax.losses: closed forms on fixed inputs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


@pytest.mark.parametrize("scales_away", [16, 30, 60])
def test_discretized_logistic_far_tail_stays_exact_and_keeps_its_gradient(scales_away):
  # A target far above the mean: two float32 sigmoids differ by less than their rounding there.
  mean, scale, target = -0.5, 0.02, -0.5 + scales_away * 0.02
  target = round((target + 1) * 127.5) / 127.5 - 1  # A bin centre.
  nll = losses.discretized_logistic_nll(jnp.array([[mean]]), jnp.log(jnp.array([[scale]])), jnp.array([[target]]))
  # The exact mass in float64: sigmoid(a) - sigmoid(b) = exp(-b) - exp(-a) over (1 + exp(-a))(1 + exp(-b)).
  upper, lower = (target + 1 / 255 - mean) / scale, (target - 1 / 255 - mean) / scale
  exact = -math.log((math.exp(-lower) - math.exp(-upper)) / ((1 + math.exp(-upper)) * (1 + math.exp(-lower))))
  np.testing.assert_allclose(float(nll[0]), exact, rtol=0.02)
  gradient = jax.grad(
      lambda m: jnp.sum(losses.discretized_logistic_nll(m, jnp.log(jnp.array([[scale]])), jnp.array([[target]])))
  )(jnp.array([[mean]]))
  assert float(gradient[0, 0]) < 0  # Raising the mean towards the target lowers the NLL.


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


_REAL_LOGITS = np.array([2.0, -0.5, 0.3, 4.0], np.float32)
_FAKE_LOGITS = np.array([-1.0, 0.7, -3.0, 0.0], np.float32)
_sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_gan_discriminator_loss_is_the_reference_texts_formula():
  # L_D = -[log D(x) + log(1 - D(G(z)))], D = sigmoid(logits), averaged over the batch.
  expected = -np.mean(np.log(_sigmoid(_REAL_LOGITS)) + np.log(1.0 - _sigmoid(_FAKE_LOGITS)))
  for loss in ("non_saturating", "minimax"):
    np.testing.assert_allclose(
        jnp.mean(losses.discriminator_loss(loss, _REAL_LOGITS, _FAKE_LOGITS)), expected, rtol=1e-6
    )


def test_non_saturating_generator_loss_is_minus_log_d_of_fakes():
  expected = -np.mean(np.log(_sigmoid(_FAKE_LOGITS)))
  np.testing.assert_allclose(jnp.mean(losses.generator_loss("non_saturating", _FAKE_LOGITS)), expected, rtol=1e-6)


def test_minimax_generator_loss_is_log_one_minus_d_of_fakes():
  expected = np.mean(np.log(1.0 - _sigmoid(_FAKE_LOGITS)))
  np.testing.assert_allclose(jnp.mean(losses.generator_loss("minimax", _FAKE_LOGITS)), expected, rtol=1e-6)


def test_hinge_least_squares_and_wasserstein_losses_match_their_formulas():
  r, f = _REAL_LOGITS, _FAKE_LOGITS
  cases = {
      "hinge": (np.mean(np.maximum(0, 1 - r) + np.maximum(0, 1 + f)), -np.mean(f)),
      "least_squares": (np.mean(0.5 * (r - 1) ** 2 + 0.5 * f**2), np.mean(0.5 * (f - 1) ** 2)),
      "wasserstein": (np.mean(f) - np.mean(r), -np.mean(f)),
  }
  for loss, (d_expected, g_expected) in cases.items():
    np.testing.assert_allclose(jnp.mean(losses.discriminator_loss(loss, r, f)), d_expected, rtol=1e-6)
    np.testing.assert_allclose(jnp.mean(losses.generator_loss(loss, f)), g_expected, rtol=1e-6)


def test_probabilistic_gan_losses_stay_finite_for_confident_discriminators():
  huge = jnp.array([80.0, -80.0])
  for loss in ("non_saturating", "minimax"):
    assert np.all(np.isfinite(losses.discriminator_loss(loss, huge, -huge)))
    assert np.all(np.isfinite(losses.generator_loss(loss, huge)))


def test_gradient_penalty_of_a_linear_critic_is_analytic():
  # critic(x) = <w, x> has gradient w everywhere, so the penalty is (||w|| - 1)^2 for every interpolate.
  w = jnp.array([[0.5], [2.0], [-1.0], [0.25]]).reshape(1, 2, 2, 1)
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  real = jax.random.normal(jax.random.key(0), (6, 2, 2, 1))
  fake = jax.random.normal(jax.random.key(1), (6, 2, 2, 1))
  penalty = losses.gradient_penalty(critic, real, fake, jax.random.key(2))
  np.testing.assert_allclose(penalty, (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-5)


def test_r1_penalty_of_a_linear_critic_is_the_squared_weight_norm():
  w = jnp.array([3.0, -4.0])
  critic = lambda x: x @ w
  np.testing.assert_allclose(losses.r1_penalty(critic, jnp.ones((5, 2))), 25.0, rtol=1e-6)


def test_gradient_penalty_is_computed_in_float32_for_bfloat16_inputs():
  critic = lambda x: jnp.sum(x.astype(jnp.float32) * 3.0, axis=-1)
  real = jnp.ones((4, 3), jnp.bfloat16)
  penalty = losses.gradient_penalty(critic, real, real * 0, jax.random.key(0))
  assert penalty.dtype == jnp.float32
  np.testing.assert_allclose(penalty, (np.sqrt(27.0) - 1.0) ** 2, rtol=1e-5)


def test_diagonal_gaussian_log_prob_sums_univariate_log_densities_over_the_last_axis():
  x = np.array([[0.5, -1.0], [2.0, 0.0]])
  mean = np.array([[0.0, 1.0], [1.5, 0.0]])
  log_variance = np.array([[0.0, np.log(4.0)], [-1.0, 2.0]])
  variance = np.exp(log_variance)
  expected = np.sum(-0.5 * np.log(2 * np.pi * variance) - (x - mean) ** 2 / (2 * variance), axis=-1)
  np.testing.assert_allclose(losses.diagonal_gaussian_log_prob(x, mean, log_variance), expected, rtol=1e-6)


def test_iwae_bound_of_identical_log_weights_is_that_weight():
  log_weights = jnp.tile(jnp.array([[-85.0, -3.5, 0.0]]), (7, 1))
  np.testing.assert_allclose(losses.iwae_bound(log_weights), [-85.0, -3.5, 0.0], rtol=1e-6, atol=2e-7)


def test_iwae_bound_of_one_sample_is_that_samples_elbo_estimate():
  log_weights = jnp.array([[-90.2, -12.0]])
  np.testing.assert_allclose(losses.iwae_bound(log_weights), [-90.2, -12.0], rtol=1e-6)


def test_iwae_bound_is_at_least_the_average_elbo_of_its_samples():
  # Jensen: log mean exp >= mean log, with equality only for identical weights.
  log_weights = 10.0 * jax.random.normal(jax.random.key(0), (50, 6)) - 100.0
  bound = losses.iwae_bound(log_weights)
  assert np.all(bound >= jnp.mean(log_weights, axis=0))
  expected = np.log(np.mean(np.exp(np.asarray(log_weights, np.float64) + 100.0), axis=0)) - 100.0
  np.testing.assert_allclose(bound, expected, rtol=1e-5)


def test_iwae_bound_stays_exact_for_log_weights_whose_exponentials_underflow():
  # exp(-1000) is 0 in float32 and float64; the bound is -1000 + log((1 + e^-1) / 2).
  bound = losses.iwae_bound(jnp.array([[-1000.0], [-1001.0]]))
  np.testing.assert_allclose(bound, [-1000.0 + math.log((1.0 + math.exp(-1.0)) / 2.0)], rtol=1e-7)
