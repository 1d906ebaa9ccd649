"""VAE family: a diagonal-Gaussian posterior, a N(0, I) prior and a pixel likelihood, trained on the beta-ELBO.

The loss is E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z)) with one reparameterised sample per image (Kingma &
Welling 2014; beta-VAE, Higgins et al. 2017). Whatever beta is, the reported bound is the true one (beta = 1):
`neg_elbo_nats` per image and `neg_elbo_bits_per_dim`, so runs with different betas compare on likelihood.
"""

import jax
import jax.numpy as jnp
import ml_collections

from genjax import errors
from genjax import losses
from genjax.models import autoencoders
from genjax.trainers import common

LIKELIHOODS = ("bernoulli", "discretized_logistic")


def check_config(config: ml_collections.ConfigDict) -> None:
  common.check_encoder_decoder_config(config, LIKELIHOODS)
  if config.model.beta < 0:
    raise errors.UserError("config.model.beta must be >= 0.")


def make_trainer(config: ml_collections.ConfigDict, example_shapes: dict[str, tuple[int, ...]]) -> common.Trainer:
  """Builds the VAE's pure functions for images of `example_shapes["image"]` (H, W, C)."""
  check_config(config)
  image_shape = common.image_shape(example_shapes, "vae")
  model_config = config.model
  likelihood = model_config.likelihood
  model = autoencoders.VAE(*common.encoder_decoder(model_config, 2 * model_config.latent_size, image_shape))
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  num_dims = image_shape[0] * image_shape[1] * image_shape[2]

  def init(key):
    init_key, sample_key = jax.random.split(key)
    params = model.init(init_key, jnp.zeros((1, *image_shape), jnp.float32), sample_key)["params"]
    return common.new_state(params, optimizer)

  def per_example_metrics(params, images, key):
    outputs, mean, log_variance = model.apply({"params": params}, images, key)
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
    return model.apply({"params": state.params}, images, method=autoencoders.VAE.encode)[0]

  def decode(state, latents, labels=None):
    del labels  # Unconditional.
    return common.likelihood_mean(
        likelihood, model.apply({"params": state.params}, latents, method=autoencoders.VAE.decode)
    )

  def reconstruct(state, images):
    """Decodes the posterior mean of each image."""
    return decode(state, encode(state, images))

  def generate(state, key, num_images):
    return decode(state, jax.random.normal(key, (num_images, model_config.latent_size)))

  return common.Trainer(
      init, train_step, eval_step, reconstruct, generate, encode, decode, latent_size=model_config.latent_size
  )
