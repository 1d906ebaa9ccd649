"""Losses as pure functions: reconstruction likelihoods, KL divergences, Gaussian log-densities, the VAE bounds
(ELBO and the importance-weighted bound) and the GAN losses and penalties.

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
  PixelCNN++ (Salimans et al. 2017), so the probabilities of all bins sum to one. Where a bin's mass is too small
  for the difference of two float32 sigmoids (a target many scales from the mean), it is the density at the bin's
  centre times the bin's width, PixelCNN++'s approximation, which keeps the value finite and its gradient alive.
  """
  half_bin = 1.0 / (num_bins - 1)
  inv_scale = jnp.exp(-log_scale)
  centred = targets - mean
  cdf_upper = jax.nn.sigmoid(inv_scale * (centred + half_bin))
  cdf_lower = jax.nn.sigmoid(inv_scale * (centred - half_bin))
  # log sigmoid and log(1 - sigmoid) in their stable softplus forms for the two edge bins.
  log_cdf_upper = (centred + half_bin) * inv_scale - jax.nn.softplus((centred + half_bin) * inv_scale)
  log_one_minus_cdf_lower = -jax.nn.softplus((centred - half_bin) * inv_scale)
  bin_mass = cdf_upper - cdf_lower
  # log of the logistic density at the centre, in its stable form: x - log(s) - 2 softplus(x).
  log_density_at_centre = inv_scale * centred - log_scale - 2.0 * jax.nn.softplus(inv_scale * centred)
  log_bin_mass = jnp.where(
      bin_mass > 1e-5,
      jnp.log(jnp.maximum(bin_mass, 1e-5)),
      log_density_at_centre + jnp.log(2.0 * half_bin),
  )
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


def diagonal_gaussian_log_prob(x: jax.Array, mean: jax.Array, log_variance: jax.Array) -> jax.Array:
  """log N(x; mean, diag(exp(log_variance))), summed over the last axis: `[..., D] -> [...]` nats."""
  log_density = -0.5 * (math.log(2.0 * math.pi) + log_variance + jnp.square(x - mean) * jnp.exp(-log_variance))
  return jnp.sum(log_density, axis=-1)


def iwae_bound(log_weights: jax.Array) -> jax.Array:
  """The importance-weighted bound log (1/K) sum_k w_k (Burda et al. 2016): `[K, N] -> [N]` nats.

  `log_weights[k, n] = log p(x_n, z_k) - log q(z_k | x_n)` for K samples z_k ~ q(z | x_n). The bound is a lower
  bound on log p(x_n) whose expectation never decreases with K (K = 1 is the one-sample ELBO), so its negative
  is an upper bound on the NLL. logsumexp subtracts the largest weight first: exp of a log weight of -100s of nats underflows.
  """
  return jax.nn.logsumexp(log_weights, axis=0) - math.log(log_weights.shape[0])


# GAN losses. Discriminator outputs are logits (any real number), so D(x) = sigmoid(logit) for the probabilistic
# losses and the raw output is the critic value for the Wasserstein and hinge losses. Like the likelihoods above,
# they return per-example values `[N]`; training minimises their batch mean.
GAN_LOSSES = ("non_saturating", "minimax", "hinge", "least_squares", "wasserstein")
# Losses that compare each logit with the other side's batch mean (Jolicoeur-Martineau 2019): the generator's needs
# the real examples' logits too, which not every family's generator update has at hand.
RELATIVISTIC_LOSSES = ("relativistic_average",)


def discriminator_loss(loss: str, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """The discriminator's (critic's) loss on pairs of real and generated examples: `[N], [N] -> [N]`.

  non_saturating, minimax: -[log D(x) + log(1 - D(G(z)))] (Goodfellow et al. 2014), as softplus of logits.
  hinge: relu(1 - D(x)) + relu(1 + D(G(z))) (Lim & Ye 2017; Miyato et al. 2018).
  least_squares: (D(x) - 1)^2 / 2 + D(G(z))^2 / 2 (Mao et al. 2017, a=0, b=1).
  wasserstein: D(G(z)) - D(x), the negated Wasserstein estimate (Arjovsky et al. 2017).
  relativistic_average: -log sigmoid(C(x) - mean C(G(z))) - log(1 - sigmoid(C(G(z)) - mean C(x))) (RaGAN, as
    ESRGAN trains its critic); each example is compared with the other side's batch mean.
  """
  if loss in ("non_saturating", "minimax"):
    # -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l), stable for any logit.
    per_example = jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
  elif loss == "hinge":
    per_example = jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits)
  elif loss == "least_squares":
    per_example = 0.5 * jnp.square(real_logits - 1.0) + 0.5 * jnp.square(fake_logits)
  elif loss == "wasserstein":
    per_example = fake_logits - real_logits
  elif loss == "relativistic_average":
    per_example = jax.nn.softplus(-(real_logits - jnp.mean(fake_logits))) + jax.nn.softplus(
        fake_logits - jnp.mean(real_logits)
    )
  else:
    raise ValueError(f"Unknown GAN loss {loss!r}; expected one of {GAN_LOSSES + RELATIVISTIC_LOSSES}.")
  return per_example


def generator_loss(loss: str, fake_logits: jax.Array, real_logits: jax.Array | None = None) -> jax.Array:
  """The generator's loss on generated examples: `[N] -> [N]`.

  non_saturating: -log D(G(z)), the form Goodfellow et al. train with.
  minimax: log(1 - D(G(z))), the saturating form of the original minimax game.
  hinge, wasserstein: -D(G(z)). least_squares: (D(G(z)) - 1)^2 / 2.
  relativistic_average: the critic's loss with real and generated swapped; needs `real_logits` `[N]`.
  """
  if loss in RELATIVISTIC_LOSSES:
    if real_logits is None:
      raise ValueError(f"The generator's {loss} loss compares with real examples: pass their logits.")
    return discriminator_loss(loss, fake_logits, real_logits)
  if loss == "non_saturating":
    per_example = jax.nn.softplus(-fake_logits)
  elif loss == "minimax":
    per_example = -jax.nn.softplus(fake_logits)  # log(1 - sigmoid(l)) = -softplus(l)
  elif loss in ("hinge", "wasserstein"):
    per_example = -fake_logits
  elif loss == "least_squares":
    per_example = 0.5 * jnp.square(fake_logits - 1.0)
  else:
    raise ValueError(f"Unknown GAN loss {loss!r}; expected one of {GAN_LOSSES + RELATIVISTIC_LOSSES}.")
  return per_example


def _input_gradient_squared_norms(critic, inputs: jax.Array) -> jax.Array:
  """Per-example squared L2 norms of d critic(x)_i / d x_i, in float32 whatever the model's dtype.

  The critic must treat examples independently (no batch normalisation), so that the gradient of the sum of its
  outputs holds every per-example gradient.
  """
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(inputs.astype(jnp.float32))
  return jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1)


def gradient_penalty(critic, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
  """WGAN-GP's two-sided penalty (Gulrajani et al. 2017): mean of (||grad critic(x_hat)|| - 1)^2 over random
  interpolates x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per example. Multiply by lambda (10)."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), jnp.float32)
  interpolates = eps * real.astype(jnp.float32) + (1.0 - eps) * fake.astype(jnp.float32)
  # The epsilon keeps the square root differentiable where a gradient vanishes.
  norms = jnp.sqrt(_input_gradient_squared_norms(critic, interpolates) + 1e-12)
  return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(critic, real: jax.Array) -> jax.Array:
  """R1 (Mescheder et al. 2018): mean of ||grad critic(x)||^2 on real data. Multiply by gamma / 2."""
  return jnp.mean(_input_gradient_squared_norms(critic, real))
