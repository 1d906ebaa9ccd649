"""Losses as pure functions: reconstruction likelihoods, KL divergences and the VAE bound.

Per-example quantities are summed over pixels and returned with shape `[N]` in nats, so that a mean over the batch
is "nats per image" and `bits_per_dim` converts it for comparison with published numbers.
"""

import math

import jax
import jax.numpy as jnp


def _sum_per_example(x: jax.Array) -> jax.Array:
  return jnp.sum(jnp.reshape(x, (x.shape[0], -1)), axis=-1)


def bernoulli_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """-log Bernoulli(targets | sigmoid(logits)), summed per example: `[N, ...] -> [N]` nats. Targets in [0, 1].

  Written as softplus(l) - t * l, which never takes the log of a saturated sigmoid.
  """
  return _sum_per_example(jax.nn.softplus(logits) - targets * logits)


def discretized_logistic_nll(
    mean: jax.Array, log_scale: jax.Array, targets: jax.Array, num_bins: int = 256
) -> jax.Array:
  """-log P(targets) under a logistic discretised into `num_bins` bins on [-1, 1], per example: `[N] nats`.

  Targets are bin centres in [-1, 1] (8-bit pixels scaled linearly). The edge bins take the logistic's tails, as in
  PixelCNN++ (Salimans et al. 2017), so the probabilities of all bins sum to one.
  """
  half_bin = 1.0 / (num_bins - 1)
  inv_scale = jnp.exp(-log_scale)
  centred = targets - mean
  cdf_upper = jax.nn.sigmoid(inv_scale * (centred + half_bin))
  cdf_lower = jax.nn.sigmoid(inv_scale * (centred - half_bin))
  # log sigmoid and log(1 - sigmoid) in their stable softplus forms for the two edge bins.
  log_cdf_upper = (centred + half_bin) * inv_scale - jax.nn.softplus((centred + half_bin) * inv_scale)
  log_one_minus_cdf_lower = -jax.nn.softplus((centred - half_bin) * inv_scale)
  log_bin_mass = jnp.log(jnp.maximum(cdf_upper - cdf_lower, 1e-12))
  log_prob = jnp.where(
      targets < -1.0 + half_bin,
      log_cdf_upper,
      jnp.where(targets > 1.0 - half_bin, log_one_minus_cdf_lower, log_bin_mass),
  )
  return -_sum_per_example(log_prob)


def squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
  """Sum of squared errors per example: `[N, ...] -> [N]`."""
  return _sum_per_example(jnp.square(predictions - targets))


def diagonal_gaussian_kl(
    mean_q: jax.Array, log_variance_q: jax.Array, mean_p: jax.Array, log_variance_p: jax.Array
) -> jax.Array:
  """KL(q || p) between diagonal Gaussians, summed over the last axes per example: `[N, D] -> [N]` nats."""
  kl = 0.5 * (
      log_variance_p
      - log_variance_q
      + (jnp.exp(log_variance_q) + jnp.square(mean_q - mean_p)) * jnp.exp(-log_variance_p)
      - 1.0
  )
  return _sum_per_example(kl)


def standard_normal_kl(mean: jax.Array, log_variance: jax.Array) -> jax.Array:
  """KL(N(mean, exp(log_variance)) || N(0, I)) per example: `[N, D] -> [N]` nats."""
  zeros = jnp.zeros_like(mean)
  return diagonal_gaussian_kl(mean, log_variance, zeros, zeros)


def bits_per_dim(nats_per_example: jax.Array, num_dims: int) -> jax.Array:
  """Converts nats per example to bits per dimension (pixel and channel)."""
  return nats_per_example / (num_dims * math.log(2.0))
