"""Specification of the VAE's likelihood evaluator (`vae.make_likelihood_evaluator`): the importance-weighted bound
is the ELBO at K = 1, never looser than the ELBO of its own samples, and independent of how samples are chunked."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from genjax import errors
from genjax.models import autoencoders
from genjax.trainers import common
from genjax.trainers import vae
from conftest import MNIST_SPEC, tiny_config


@pytest.fixture(scope="module")
def setup(digits):
  """An untrained tiny VAE, its evaluator (jitted) and 8 binarised digits (the Bernoulli likelihood's data)."""
  config = tiny_config("vae")
  params = jax.jit(vae.make_trainer(config, MNIST_SPEC).init)(jax.random.key(0)).params
  images = (np.stack([example["image"] for example in digits.eval[:8]]) > 127).astype(np.float32)
  evaluate = jax.jit(
      vae.make_likelihood_evaluator(config, MNIST_SPEC), static_argnames=("num_samples", "samples_per_chunk")
  )
  return config, params, images, evaluate


def test_iwae_bound_with_50_samples_is_at_most_the_average_neg_elbo_of_those_samples(setup):
  _, params, images, evaluate = setup
  bounds = evaluate(params, images, jax.random.key(1), num_samples=50, samples_per_chunk=25)
  assert np.all(bounds["iwae_nats"] <= bounds["neg_elbo_nats"])
  assert np.all(bounds["iwae_nats"] > 0)  # -log of a probability mass.


def test_one_sample_bound_is_the_neg_elbo_of_that_sample(setup):
  config, params, images, evaluate = setup
  key = jax.random.key(2)
  bounds = evaluate(params, images, key, num_samples=1)
  # The training path's forward pass with the key of sample 0, and the Gaussian densities from scipy.
  model = autoencoders.VAE(*common.encoder_decoder(config.model, 2 * config.model.latent_size, (28, 28, 1)))
  sample_key = jax.random.fold_in(key, 0)
  outputs, mean, log_variance = model.apply({"params": params}, images, sample_key)
  latents = mean + jnp.exp(0.5 * log_variance) * jax.random.normal(sample_key, mean.shape)
  log_posterior = scipy.stats.norm.logpdf(latents, mean, np.exp(0.5 * np.asarray(log_variance))).sum(-1)
  log_prior = scipy.stats.norm.logpdf(latents).sum(-1)
  expected = common.reconstruction_nll("bernoulli", outputs, images) + log_posterior - log_prior
  np.testing.assert_allclose(bounds["iwae_nats"], expected, rtol=1e-5)
  np.testing.assert_allclose(bounds["neg_elbo_nats"], expected, rtol=1e-5)


def test_chunking_samples_does_not_change_the_bounds(setup):
  _, params, images, evaluate = setup
  key = jax.random.key(3)
  whole = evaluate(params, images, key, num_samples=20, samples_per_chunk=20)
  for samples_per_chunk in (5, 7):  # 7 leaves a remainder chunk of 6.
    chunked = evaluate(params, images, key, num_samples=20, samples_per_chunk=samples_per_chunk)
    for name in whole:
      np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-6, err_msg=name)


def test_evaluator_reports_per_image_bounds_and_bits_per_dim_over_all_pixels(setup):
  _, params, images, evaluate = setup
  bounds = evaluate(params, images, jax.random.key(4), num_samples=10, samples_per_chunk=5)
  assert {name: value.shape for name, value in bounds.items()} == {
      "neg_elbo_nats": (8,),
      "neg_elbo_bits_per_dim": (8,),
      "iwae_nats": (8,),
      "iwae_bits_per_dim": (8,),
  }
  np.testing.assert_allclose(bounds["iwae_bits_per_dim"], bounds["iwae_nats"] / (784 * math.log(2.0)), rtol=1e-6)


def test_discretized_logistic_bounds_are_finite_and_ordered(digits):
  config = tiny_config(
      "vae", model__likelihood="discretized_logistic", data__binarize="none", data__pixel_range=(-1.0, 1.0)
  )
  params = jax.jit(vae.make_trainer(config, MNIST_SPEC).init)(jax.random.key(0)).params
  images = np.stack([example["image"] for example in digits.eval[:4]]).astype(np.float32) / 127.5 - 1.0
  evaluate = jax.jit(vae.make_likelihood_evaluator(config, MNIST_SPEC), static_argnames=("num_samples",))
  bounds = evaluate(params, images, jax.random.key(5), num_samples=8)
  assert all(np.all(np.isfinite(value)) for value in bounds.values())
  assert np.all(bounds["iwae_nats"] <= bounds["neg_elbo_nats"])


def test_gaussian_likelihood_has_no_likelihood_evaluator():
  with pytest.raises(errors.UserError, match="likelihood"):
    vae.make_likelihood_evaluator(tiny_config("vae", model__likelihood="gaussian"), MNIST_SPEC)


def test_an_unknown_likelihood_is_refused_by_name():
  with pytest.raises(errors.UserError, match="config.model.likelihood='poisson' is not one of"):
    vae.make_trainer(tiny_config("vae", model__likelihood="poisson"), MNIST_SPEC)
