"""Diffusion family: a DDPM U-Net (`models.unets`) trained on the simple loss of a Gaussian diffusion process
(`gaussian_diffusion`), with a weight average that every use of the model takes by default.

Training (Ho et al. 2020, Algorithm 1): each image gets a timestep drawn uniformly from [0, T) and noise; the network
sees x_t and predicts the noise, the clean image or the velocity (`config.diffusion.prediction`), and the loss is
the mean squared error of that prediction. With learned variances (`config.diffusion.variance="learned_range"`) the
network also outputs the reverse process's variances, and the loss is Nichol & Dhariwal's hybrid: the simple loss
plus `config.diffusion.vlb_weight` times the variational bound, whose gradient reaches only the variances. The
state keeps an exponential moving average of the weights (`config.diffusion.ema_decay`, 0.9999 in the paper), and
the sampler, the decoder, the encoder, the likelihood and the eval split's loss use it (`config.diffusion.use_ema`;
the protocol of sample scores says which).

With `config.model.num_classes > 0` the model is class-conditional: its class embedding has one more entry, the
null class, which replaces the label of a `config.diffusion.label_dropout` fraction of training images, so that one
network is both conditional and unconditional, as classifier-free guidance needs (Ho & Salimans 2021).

Capabilities:
- sampler: ancestral (DDPM, all T steps) or DDIM (`config.diffusion.sampling`: sampler, steps, eta, guidance
  scale w, with eps = (1 + w) eps(x, label) - w eps(x, null): 0 is the plain conditional model), from N(0, I); a
  conditional model draws class by class as the GAN does;
- decoder: deterministic DDIM (eta = 0, `sampling.steps` steps) from the flattened x_T `[N, H * W * C]`, the
  latent code;
- encoder (an unconditional model, or a conditional one trained with label dropout, through its null class): DDIM
  inversion, the code from which the decoder returns to about the image; reconstructions decode it;
- likelihood, the same models: the variational bound "vlb" in nats and bits per dimension on 8-bit pixels scaled to
  [-1, 1] (discretised Gaussian decoder), all T terms, one noise draw each; it has no use for importance samples.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections

from genjax import errors
from genjax import gaussian_diffusion
from genjax import losses
from genjax.data import sources
from genjax.models import unets
from genjax.trainers import common
from genjax.trainers import contract

SAMPLERS = ("ddpm", "ddim")
# Timesteps whose network passes the bound runs at once (activations of this many evaluation batches).
VLB_TIMESTEPS_PER_CHUNK = 10


def check_config(config: ml_collections.ConfigDict, image_shape: tuple[int, int, int]) -> None:
  """Refuses names that do not exist and settings that cannot work, before anything compiles."""
  diffusion_config, model_config, sampling = config.diffusion, config.model, config.diffusion.sampling
  for value, valid, key in [
      (diffusion_config.schedule, gaussian_diffusion.SCHEDULES, "diffusion.schedule"),
      (diffusion_config.prediction, gaussian_diffusion.PREDICTIONS, "diffusion.prediction"),
      (diffusion_config.variance, gaussian_diffusion.VARIANCES, "diffusion.variance"),
      (sampling.sampler, SAMPLERS, "diffusion.sampling.sampler"),
  ]:
    if value not in valid:
      raise errors.UserError(f"config.{key}={value!r} is not one of {', '.join(valid)}.")
  num_timesteps = diffusion_config.num_timesteps
  if num_timesteps < 1:
    raise errors.UserError(f"config.diffusion.num_timesteps={num_timesteps} must be at least 1.")
  if not 1 <= sampling.steps <= num_timesteps:
    raise errors.UserError(
        f"config.diffusion.sampling.steps={sampling.steps}: DDIM takes between 1 and the process's "
        f"{num_timesteps} steps (config.diffusion.num_timesteps)."
    )
  if model_config.num_classes < 0:
    raise errors.UserError("config.model.num_classes must be >= 0 (0: unconditional).")
  if sampling.guidance_scale and not model_config.num_classes:
    raise errors.UserError(
        f"config.diffusion.sampling.guidance_scale={sampling.guidance_scale} guides a class-conditional model; this "
        "one is unconditional (config.model.num_classes=0): set the guidance scale to 0."
    )
  if sampling.guidance_scale and not diffusion_config.label_dropout:
    raise errors.UserError(
        "Classifier-free guidance needs the unconditional model that label dropout trains: set "
        "config.diffusion.label_dropout > 0 (0.1 or 0.2 in Ho & Salimans 2021), or the guidance scale to 0."
    )
  if not 0.0 <= diffusion_config.label_dropout < 1.0:
    raise errors.UserError("config.diffusion.label_dropout must be in [0, 1).")
  if diffusion_config.vlb_weight < 0:
    raise errors.UserError(
        f"config.diffusion.vlb_weight={diffusion_config.vlb_weight} must be >= 0 (the hybrid loss's lambda)."
    )
  if not 0.0 <= diffusion_config.ema_decay < 1.0:
    raise errors.UserError("config.diffusion.ema_decay must be in [0, 1) (0: the average is the weights).")
  if tuple(config.data.pixel_range) != (-1.0, 1.0):
    raise errors.UserError(
        "The diffusion process is defined on pixels in [-1, 1]: set config.data.pixel_range=(-1.0, 1.0)."
    )
  if config.data.binarize != "none":
    raise errors.UserError("The diffusion family models 8-bit pixels: set config.data.binarize='none'.")
  factor = 2 ** (len(model_config.channel_multipliers) - 1)
  if image_shape[0] % factor or image_shape[1] % factor:
    raise errors.UserError(
        f"The U-Net halves the image {len(model_config.channel_multipliers) - 1} times "
        f"(config.model.channel_multipliers); {image_shape[0]}x{image_shape[1]} images are not divisible by {factor}."
    )


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the diffusion model's pure functions for the images of `spec`: it samples, decodes and, unconditional or
  trained with label dropout, encodes and bounds the likelihood."""
  image_shape = common.image_shape(spec, "diffusion")
  check_config(config, image_shape)
  diffusion_config, model_config, sampling = config.diffusion, config.model, config.diffusion.sampling
  num_classes = model_config.num_classes
  null_label = num_classes  # The class embedding's extra entry.
  process = gaussian_diffusion.make_process(
      diffusion_config.schedule,
      diffusion_config.num_timesteps,
      diffusion_config.prediction,
      diffusion_config.variance,
  )
  unet = unets.UNet(
      out_channels=gaussian_diffusion.output_channels(process, image_shape[2]),
      channels=model_config.channels,
      channel_multipliers=tuple(model_config.channel_multipliers),
      num_res_blocks=model_config.num_res_blocks,
      attention_resolutions=tuple(model_config.attention_resolutions),
      dropout=model_config.dropout,
      num_classes=num_classes,
  )
  apply = common.mixed_precision(unet.apply, model_config.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  ema = common.EMA(diffusion_config.ema_decay, diffusion_config.ema_start_step)
  num_dims = math.prod(image_shape)

  def init(key):
    labels = jnp.zeros((1,), jnp.int32) if num_classes else None
    params = unet.init(key, jnp.zeros((1, *image_shape)), jnp.zeros((1,), jnp.int32), labels)["params"]
    return common.new_state(params, optimizer, ema)

  def per_example_metrics(params, batch, key, train):
    images = batch["image"]
    timestep_key, noise_key, dropout_key, label_key = jax.random.split(key, 4)
    timesteps = jax.random.randint(timestep_key, (images.shape[0],), 0, process.num_timesteps)
    noise = jax.random.normal(noise_key, images.shape, images.dtype)
    labels = None
    if num_classes:
      labels = batch["label"]
      if train and diffusion_config.label_dropout:
        dropped = jax.random.bernoulli(label_key, diffusion_config.label_dropout, labels.shape)
        labels = jnp.where(dropped, null_label, labels)
    x_t = gaussian_diffusion.q_sample(process, images, timesteps, noise)
    output = apply({"params": params}, x_t, timesteps, labels, train=train, rngs={"dropout": dropout_key})
    if process.learns_variance:
      loss = gaussian_diffusion.hybrid_loss(process, output, images, x_t, noise, timesteps, diffusion_config.vlb_weight)
    else:
      loss = gaussian_diffusion.simple_loss(process, output, images, noise, timesteps)
    return {"loss": loss}

  train_step, _ = common.steps_from_per_example_metrics(per_example_metrics, optimizer, ema)

  def sampling_params(state):
    return state.ema_params if diffusion_config.use_ema else state.params

  def eval_step(state, batch, key):
    """The loss of the weights that the model is used with, on held-out images."""
    return common.masked_sums(per_example_metrics(sampling_params(state), batch, key, False), batch["mask"])

  def model_fn(state, labels, guidance_scale):
    """The network as the process sees it, `(x_t, t) -> prediction`, for `labels` (None: unconditional), guided."""
    params = sampling_params(state)
    predict = lambda x_t, timesteps, labels: apply({"params": params}, x_t, timesteps, labels)
    if not guidance_scale:
      return lambda x_t, timesteps: predict(x_t, timesteps, labels)

    def guided(x_t, timesteps):
      # One pass over the labelled and the null-labelled copies together.
      both = predict(
          jnp.concatenate([x_t, x_t]),
          jnp.concatenate([timesteps, timesteps]),
          jnp.concatenate([labels, jnp.full_like(labels, null_label)]),
      )
      conditional, unconditional = jnp.split(both, 2)
      return gaussian_diffusion.guided(process, conditional, unconditional, guidance_scale)

    return guided

  def null_labels(num_examples):
    return jnp.full((num_examples,), null_label, jnp.int32) if num_classes else None

  def sample_from(state, x_T, labels, key):
    """Images in [-1, 1] from noise `x_T [N, H, W, C]` by the configured sampler."""
    predict = model_fn(state, labels, sampling.guidance_scale)
    if sampling.sampler == "ddpm":
      images = gaussian_diffusion.ddpm_sample(process, predict, x_T, key, sampling.clip)
    else:
      images = gaussian_diffusion.ddim_sample(process, predict, x_T, sampling.steps, sampling.eta, key, sampling.clip)
    return jnp.clip(images, -1.0, 1.0)

  def generate(state, key, num_images):
    noise_key, sampler_key = jax.random.split(key)
    noise = jax.random.normal(noise_key, (num_images, *image_shape))
    return sample_from(state, noise, contract.class_by_class(num_images, num_classes), sampler_key)

  def decode(state, latents, labels=None):
    """Deterministic DDIM from the codes `[N, H * W * C]` (x_T flattened)."""
    if num_classes and labels is None:
      labels = null_labels(latents.shape[0])
    predict = model_fn(state, labels, sampling.guidance_scale if labels is not None else 0.0)
    x_T = latents.reshape(-1, *image_shape)
    images = gaussian_diffusion.ddim_sample(process, predict, x_T, sampling.steps, 0.0, None, sampling.clip)
    return jnp.clip(images, -1.0, 1.0)

  def encode(state, images):
    """DDIM inversion in `sampling.steps` steps (unconditional, or through the null class): `[N, H * W * C]`."""
    predict = model_fn(state, null_labels(images.shape[0]), 0.0)
    return gaussian_diffusion.ddim_invert(process, predict, images, sampling.steps).reshape(images.shape[0], -1)

  def reconstruct(state, images):
    return decode(state, encode(state, images), null_labels(images.shape[0]))

  def bounds(state, images, key, num_samples):
    del num_samples  # The bound sums all T terms; it draws no importance samples.
    predict = model_fn(state, null_labels(images.shape[0]), 0.0)
    vlb = gaussian_diffusion.variational_bound(process, predict, images, key, VLB_TIMESTEPS_PER_CHUNK)
    return {"vlb_nats": vlb, "vlb_bits_per_dim": losses.bits_per_dim(vlb, num_dims)}

  weights = "weight average (EMA)" if diffusion_config.use_ema else "trained weights (no average)"
  sampler_protocol = {
      "sampler": (
          f"ancestral (DDPM), {process.num_timesteps} steps"
          if sampling.sampler == "ddpm"
          else f"DDIM, {sampling.steps} of {process.num_timesteps} steps, eta {sampling.eta}"
      ),
      "guidance_scale": sampling.guidance_scale,
      "weights": weights,
  }

  def likelihood_protocol(num_samples):
    del num_samples
    return {
        "vlb": f"all {process.num_timesteps} terms, one draw of x_t each; 8-bit pixels, discretised Gaussian decoder",
        "weights": weights,
    }

  # The unconditional model that encoding and the likelihood need: the network itself, or its null class.
  has_unconditional_model = not num_classes or diffusion_config.label_dropout > 0
  return contract.Trainer(
      init,
      train_step,
      eval_step,
      needs_labels=bool(num_classes),
      decoder=contract.Decoder(decode, num_dims, num_classes),  # The codes: x_T, flattened.
      sampler=contract.Sampler(generate, sampler_protocol),
      encoder=contract.Encoder(encode, reconstruct) if has_unconditional_model else None,
      likelihood=(contract.Likelihood(bounds, ("vlb",), likelihood_protocol) if has_unconditional_model else None),
  )
