"""Autoencoder family: deterministic encode/decode trained on a reconstruction loss, optionally denoising.

With `config.model.input_noise_std > 0` the encoder sees images with added Gaussian noise and the loss compares
the reconstruction with the clean image (a denoising autoencoder, Vincent et al. 2008).
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

LIKELIHOODS = ("gaussian", "bernoulli")


def check_config(config: ml_collections.ConfigDict) -> None:
  common.check_encoder_decoder_config(config, LIKELIHOODS)
  if config.model.input_noise_std < 0:
    raise errors.UserError("config.model.input_noise_std must be >= 0.")


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the autoencoder's pure functions for the images of `spec`."""
  check_config(config)
  image_shape = common.image_shape(spec, "autoencoder")
  model_config = config.model
  likelihood = model_config.likelihood
  model = autoencoders.Autoencoder(*common.encoder_decoder(model_config, model_config.latent_size, image_shape))
  apply = common.mixed_precision(model.apply, model_config.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  num_dims = image_shape[0] * image_shape[1] * image_shape[2]

  def init(key):
    return common.new_state(model.init(key, jnp.zeros((1, *image_shape), jnp.float32))["params"], optimizer)

  def corrupt(images, key):
    return images + model_config.input_noise_std * jax.random.normal(key, images.shape, images.dtype)

  def per_example_metrics(params, batch, key, train):
    del train  # The same noise in training and evaluation: the evaluation measures the denoising task.
    images = batch["image"]
    outputs = apply({"params": params}, corrupt(images, key))
    nll = common.reconstruction_nll(likelihood, outputs, images)
    squared_error = losses.squared_error(common.likelihood_mean(likelihood, outputs), images)
    # The loss per pixel for squared error (the usual MSE scale); nats per image for the Bernoulli likelihood.
    loss = squared_error / num_dims if likelihood == "gaussian" else nll
    return {"loss": loss, "mse": squared_error / num_dims}

  train_step, eval_step = common.steps_from_per_example_metrics(per_example_metrics, optimizer)

  def encode(state, images):
    return apply({"params": state.params}, images, method=autoencoders.Autoencoder.encode)

  def decode(state, codes, labels=None):
    del labels  # Unconditional.
    outputs = apply({"params": state.params}, codes, method=autoencoders.Autoencoder.decode)
    return common.likelihood_mean(likelihood, outputs)

  def reconstruct(state, images):
    return decode(state, encode(state, images))

  # No sampler: an autoencoder's codes follow no known distribution to sample from; decode still interpolates.
  return contract.Trainer(
      init,
      train_step,
      eval_step,
      decoder=contract.Decoder(decode, model_config.latent_size),
      encoder=contract.Encoder(encode, reconstruct, corrupt if model_config.input_noise_std > 0 else None),
  )
