"""VAE family: a diagonal-Gaussian posterior, a N(0, I) prior and a pixel likelihood, trained on the beta-ELBO.

The loss is E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)) with one reparameterised sample per image (Kingma &
Welling 2014; beta-VAE, Higgins et al. 2017). Whatever beta is, the reported bound is the true one (beta = 1):
`neg_elbo_nats` per image and `neg_elbo_bits_per_dim`, so runs with different betas compare on likelihood.
`make_likelihood_evaluator` tightens it for evaluation with the K-sample importance-weighted bound.
"""

import jax
import jax.numpy as jnp
import ml_collections

from genjax import errors
from genjax import losses
from genjax.data import sources
from genjax.models import autoencoders
from genjax.trainers import common
from genjax.trainers import contract

LIKELIHOODS = ("bernoulli", "discretized_logistic")


def check_config(config: ml_collections.ConfigDict) -> None:
  common.check_encoder_decoder_config(config, LIKELIHOODS)
  if config.model.beta < 0:
    raise errors.UserError("config.model.beta must be >= 0.")


def _model(config: ml_collections.ConfigDict, spec: sources.ExampleSpec):
  """The configured VAE for the images of `spec`, its `apply` in the configured compute dtype, and the image shape."""
  check_config(config)
  image_shape = common.image_shape(spec, "vae")
  model = autoencoders.VAE(*common.encoder_decoder(config.model, 2 * config.model.latent_size, image_shape))
  return model, common.mixed_precision(model.apply, config.model.dtype), image_shape


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the VAE's pure functions for the images of `spec`. It decodes, samples, encodes and bounds the
  likelihood (with `make_likelihood_evaluator`)."""
  model, apply, image_shape = _model(config, spec)
  model_config = config.model
  likelihood = model_config.likelihood
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  num_dims = image_shape[0] * image_shape[1] * image_shape[2]

  def init(key):
    init_key, sample_key = jax.random.split(key)
    params = model.init(init_key, jnp.zeros((1, *image_shape), jnp.float32), sample_key)["params"]
    return common.new_state(params, optimizer)

  def per_example_metrics(params, batch, key, train):
    del train  # One posterior sample in training and evaluation alike: the ELBO's estimate.
    images = batch["image"]
    outputs, mean, log_variance = apply({"params": params}, images, key)
    reconstruction = common.reconstruction_nll(likelihood, outputs, images)
    kl = losses.standard_normal_kl(mean, log_variance)
    neg_elbo = reconstruction + kl
    return {
        "loss": reconstruction + model_config.beta * kl,
        "neg_elbo_nats": neg_elbo,
        "neg_elbo_bits_per_dim": losses.bits_per_dim(neg_elbo, num_dims),
        "reconstruction_nll": reconstruction,
        "kl": kl,
    }

  train_step, eval_step = common.steps_from_per_example_metrics(per_example_metrics, optimizer)

  def encode(state, images):
    """The posterior mean of each image."""
    return apply({"params": state.params}, images, method=autoencoders.VAE.encode)[0]

  def decode(state, latents, labels=None):
    del labels  # Unconditional.
    return common.likelihood_mean(likelihood, apply({"params": state.params}, latents, method=autoencoders.VAE.decode))

  def reconstruct(state, images):
    """Decodes the posterior mean of each image."""
    return decode(state, encode(state, images))

  def generate(state, key, num_images):
    return decode(state, jax.random.normal(key, (num_images, model_config.latent_size)))

  likelihood_bounds = make_likelihood_evaluator(config, spec)
  return contract.Trainer(
      init,
      train_step,
      eval_step,
      decoder=contract.Decoder(decode, model_config.latent_size),
      sampler=contract.Sampler(generate),
      encoder=contract.Encoder(encode, reconstruct),
      likelihood=contract.Likelihood(
          lambda state, images, key, num_samples: likelihood_bounds(state.params, images, key, num_samples),
          names=("neg_elbo", "iwae"),
          protocol=lambda num_samples: {"iwae_samples": num_samples},
      ),
  )


def make_likelihood_evaluator(config: ml_collections.ConfigDict, spec: sources.ExampleSpec):
  """Builds `evaluate(params, images, key, num_samples, samples_per_chunk=100) -> dict of [N] arrays`, the
  likelihood bounds of a trained VAE (`state.params` of `make_trainer(config, example_shapes)`):

    neg_elbo_nats: -(1/K) sum_k log w_k, the negative ELBO estimated from the same K samples (its MC estimate of
                   the KL term, not the closed form the trainer reports), nats per image.
    iwae_nats:     -[logsumexp_k log w_k - log K] (Burda et al. 2016), an upper bound on -log p(x) in nats per
                   image that tightens as K grows; never above neg_elbo_nats for the same samples (Jensen).
    neg_elbo_bits_per_dim, iwae_bits_per_dim: the same over H * W * C dimensions.

  log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) with z_k ~ q(z|x) drawn from `fold_in(key, k)`, so a
  sample's draw depends on neither K nor the chunking. Samples are decoded `samples_per_chunk` at a time (a scan
  over chunks, vmapped within one), so activations peak at samples_per_chunk * N decoder passes whatever K is;
  split a large evaluation set into batches of images as well. `num_samples` and `samples_per_chunk` must be static
  under jit. These are likelihoods of the data as the pipeline delivers it: of binarised pixels for "bernoulli"
  (with config.data.binarize="none" the Bernoulli NLL of grey levels is a loss, not a likelihood), of 8-bit pixels
  for "discretized_logistic". The VAE family has no Gaussian likelihood, so `check_config` refuses one.
  """
  _, apply, image_shape = _model(config, spec)
  likelihood = config.model.likelihood
  num_dims = image_shape[0] * image_shape[1] * image_shape[2]

  def evaluate(params, images, key, num_samples: int, samples_per_chunk: int = 100):
    mean, log_variance = apply({"params": params}, images, method=autoencoders.VAE.encode)
    zeros = jnp.zeros_like(mean)

    def log_weight(sample_index):
      """log w of one posterior sample for every image: `[N]`."""
      noise = jax.random.normal(jax.random.fold_in(key, sample_index), mean.shape, mean.dtype)
      latents = mean + jnp.exp(0.5 * log_variance) * noise
      outputs = apply({"params": params}, latents, method=autoencoders.VAE.decode)
      log_likelihood = -common.reconstruction_nll(likelihood, outputs, images)
      log_prior = losses.diagonal_gaussian_log_prob(latents, zeros, zeros)
      log_posterior = losses.diagonal_gaussian_log_prob(latents, mean, log_variance)
      return log_likelihood + log_prior - log_posterior

    # [K, N] log weights are K * N floats (20 MB for K = 5000, N = 1000); the decoder's activations are what
    # the chunking bounds.
    log_weights = jax.lax.map(log_weight, jnp.arange(num_samples), batch_size=min(samples_per_chunk, num_samples))
    neg_elbo = -jnp.mean(log_weights, axis=0)
    iwae = -losses.iwae_bound(log_weights)
    return {
        "neg_elbo_nats": neg_elbo,
        "neg_elbo_bits_per_dim": losses.bits_per_dim(neg_elbo, num_dims),
        "iwae_nats": iwae,
        "iwae_bits_per_dim": losses.bits_per_dim(iwae, num_dims),
    }

  return evaluate
