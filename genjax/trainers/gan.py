"""GAN family: the generator/discriminator state and one jitted step of `n_critic` critic updates and one
generator update, composed of the adversarial kit (`trainers.adversarial`) and the shared optimiser update and
weight average (`trainers.common`). What is the GAN's own here: latents, its networks, and the step's schedule.

The step takes `n_critic` real batches stacked as `[n_critic, B, H, W, C]` and runs one critic update on each,
so that each update sees its own real batch, as in Algorithm 1 of the WGAN-GP paper. The loss (`config.gan.loss`),
the penalty on the critic (`config.gan.penalty`: WGAN-GP, R1 or none, computed every `config.gan.penalty_every`
critic updates) and weight clipping (the original WGAN) are config fields, so an ablation is an override. The
generator keeps an exponential moving average of its weights (by decay or half-life), which samples use. With
`config.model.num_classes > 0` the model is class-conditional: the critic sees real images and fakes of the same
labels, the generator's update uses the labels of the last real batch, and sample grids show one row per class.
"""

import math

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax import errors
from genjax import losses
from genjax.data import sources
from genjax.models import gans
from genjax.trainers import adversarial
from genjax.trainers import common
from genjax.trainers import contract

ARCHITECTURES = ("dcgan", "resnet", "mlp")


@flax.struct.dataclass
class GANState:
  """Both networks' parameters, batch statistics and optimiser states, and the generator's weight average."""

  step: jax.Array
  g_params: dict
  g_batch_stats: dict
  g_opt_state: optax.OptState
  g_ema_params: dict
  d_params: dict
  d_batch_stats: dict
  d_opt_state: optax.OptState


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses names that do not exist and combinations that cannot work, before anything compiles."""
  gan_config, model_config = config.gan, config.model
  for value, valid, key in [
      (model_config.architecture, ARCHITECTURES, "model.architecture"),
      (model_config.d_normalization, gans.NORMALIZATIONS, "model.d_normalization"),
      (gan_config.loss, losses.GAN_LOSSES, "gan.loss"),
      (gan_config.penalty, adversarial.PENALTIES, "gan.penalty"),
  ]:
    if value not in valid:
      raise errors.UserError(f"config.{key}={value!r} is not one of {', '.join(valid)}.")
  if gan_config.penalty != "none" and model_config.d_normalization == "batch":
    raise errors.UserError(
        f"config.gan.penalty={gan_config.penalty!r} needs a critic without batch normalisation (batch statistics "
        "make each example's gradient depend on the others); set config.model.d_normalization to 'layer' or "
        "'none'."
    )
  if model_config.num_classes < 0:
    raise errors.UserError("config.model.num_classes must be >= 0 (0: unconditional).")
  if gan_config.n_critic < 1:
    raise errors.UserError(f"config.gan.n_critic={gan_config.n_critic} must be at least 1.")
  if gan_config.penalty_every < 1:
    raise errors.UserError(f"config.gan.penalty_every={gan_config.penalty_every} must be at least 1.")
  if gan_config.weight_clip < 0:
    raise errors.UserError("config.gan.weight_clip must be >= 0 (0 disables clipping).")
  if not 0.0 <= gan_config.ema_decay < 1.0:
    raise errors.UserError("config.gan.ema_decay must be in [0, 1) (0 disables the average).")
  if gan_config.ema_half_life_images < 0:
    raise errors.UserError("config.gan.ema_half_life_images must be >= 0 (0: the average uses config.gan.ema_decay).")


def _networks(config: ml_collections.ConfigDict, spec: sources.ExampleSpec):
  """The configured generator and discriminator for the examples of `spec`."""
  model_config = config.model
  data_shape = spec.data_shape
  architecture, num_classes = model_config.architecture, model_config.num_classes
  d_options = dict(
      normalization=model_config.d_normalization, num_classes=num_classes, spectral_norm=model_config.d_spectral_norm
  )
  if architecture == "mlp":
    generator = gans.MLPGenerator(model_config.g_channels, math.prod(data_shape), num_classes)
    return generator, gans.MLPDiscriminator(model_config.d_channels, **d_options)
  if not spec.is_image:
    raise errors.UserError(f"The {architecture} architecture makes images; for 2-D points use 'mlp'.")
  if tuple(config.data.pixel_range) != (-1.0, 1.0):
    raise errors.UserError("Image generators end in tanh: set config.data.pixel_range=(-1.0, 1.0).")
  expected_size = model_config.g_base_size * 2 ** len(model_config.g_channels)
  if data_shape[:2] != (expected_size, expected_size):
    raise errors.UserError(
        f"The generator makes {expected_size}x{expected_size} images (g_base_size * 2^len(g_channels)) but the "
        f"data's are {data_shape[0]}x{data_shape[1]}."
    )
  g_arguments = (model_config.g_base_size, model_config.g_channels, data_shape[2], num_classes)
  if architecture == "resnet":
    return gans.ResNetGenerator(*g_arguments), gans.ResNetCritic(model_config.d_channels, **d_options)
  return gans.DCGANGenerator(*g_arguments), gans.DCGANDiscriminator(model_config.d_channels, **d_options)


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the GAN's pure functions for the examples of `spec` (images HWC, or 2-D points), composed of the
  adversarial kit's pieces. It decodes (latents through the generator's weight average) and samples."""
  check_config(config)
  gan_config, model_config = config.gan, config.model
  num_classes = model_config.num_classes
  data_key, data_shape = spec.data_key, spec.data_shape
  generator, discriminator = _networks(config, spec)
  apply_generator = common.mixed_precision(generator.apply, model_config.dtype)
  apply_discriminator = common.mixed_precision(discriminator.apply, model_config.dtype)
  g_optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  critic_training = adversarial.CriticTraining(
      apply_discriminator,
      gan_config.loss,
      # The critic takes n_critic steps per generator step; its schedule counts its own steps.
      common.make_optimizer(config.optim, config.train.total_steps * gan_config.n_critic),
      adversarial.Penalty(gan_config.penalty, gan_config.penalty_weight, gan_config.penalty_every),
      gan_config.weight_clip,
  )
  if gan_config.ema_half_life_images:
    ema = common.EMA.from_half_life(gan_config.ema_half_life_images, config.train.batch_size, gan_config.ema_start_step)
  else:
    ema = common.EMA(gan_config.ema_decay, gan_config.ema_start_step)
  latent_size = model_config.latent_size

  def init(key):
    g_key, d_key = jax.random.split(key)
    labels = jnp.zeros((1,), jnp.int32) if num_classes else None
    g_variables = generator.init(g_key, jnp.zeros((1, latent_size)), labels, train=False)
    d_variables = discriminator.init(d_key, jnp.zeros((1, *data_shape)), labels, train=False)
    return GANState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_variables["params"],
        g_batch_stats=g_variables.get("batch_stats", {}),
        g_opt_state=g_optimizer.init(g_variables["params"]),
        g_ema_params=g_variables["params"],
        d_params=d_variables["params"],
        d_batch_stats=d_variables.get("batch_stats", {}),
        d_opt_state=critic_training.optimizer.init(d_variables["params"]),
    )

  def generate_train_mode(g_params, g_batch_stats, latents, labels):
    """Fakes in training mode, and the generator's batch statistics updated by this batch."""
    fakes, g_batch_stats = common.apply_training_mode(apply_generator, g_params, g_batch_stats, latents, labels)
    return fakes.reshape(-1, *data_shape), g_batch_stats

  def train_step(state, batch, key):
    n_critic, batch_size = batch[data_key].shape[:2]
    keys = jax.random.split(key, 2 * n_critic)
    # The critic sees fakes generated with the real batch's labels, so that a penalty's interpolates have one class.
    critic_labels = [batch["label"][index] if num_classes else None for index in range(n_critic)]

    # The generator's forward pass for its own update runs once, first, and its fakes also serve the last critic
    # update (as in the DCGAN reference implementations), which saves a generator forward pass per step.
    g_latents = jax.random.normal(keys[n_critic - 1], (batch_size, latent_size))
    g_labels = critic_labels[-1]
    (fakes_for_generator, g_batch_stats), generator_vjp = jax.vjp(
        lambda g_params: generate_train_mode(g_params, state.g_batch_stats, g_latents, g_labels), state.g_params
    )

    # A Python loop (n_critic is small and static) rather than lax.scan: on CPU, XLA ran the convolutions of a
    # one-iteration scan about 12x slower (measured: 1.4 s against 0.12 s for a DCGAN step of batch 128).
    d_params, d_batch_stats, d_opt_state = state.d_params, state.d_batch_stats, state.d_opt_state
    per_update_metrics = []
    for index in range(n_critic):
      if index == n_critic - 1:
        fakes = fakes_for_generator
      else:
        latents = jax.random.normal(keys[index], (batch_size, latent_size))
        fakes, _ = generate_train_mode(state.g_params, state.g_batch_stats, latents, critic_labels[index])
      d_params, d_batch_stats, d_opt_state, metrics = adversarial.critic_update(
          critic_training,
          d_params,
          d_batch_stats,
          d_opt_state,
          real=batch[data_key][index],
          fakes=fakes,
          conditioning=critic_labels[index],
          key=keys[n_critic + index],
          update_index=state.step * n_critic + index,
      )
      per_update_metrics.append(metrics)
    critic_metrics = jax.tree.map(lambda *values: jnp.stack(values), *per_update_metrics)

    g_loss, fakes_grad = jax.value_and_grad(
        lambda fakes: adversarial.generator_loss(critic_training, d_params, d_batch_stats, fakes, g_labels)
    )(fakes_for_generator)
    (grads,) = generator_vjp((fakes_grad, jax.tree.map(jnp.zeros_like, g_batch_stats)))
    g_params, g_opt_state = common.apply_gradients(state.g_params, state.g_opt_state, grads, g_optimizer)
    metrics = jax.tree.map(jnp.mean, critic_metrics)  # Averages over the n_critic updates.
    # "loss", the metric every family reports, is the critic's loss here (as in the eval lines).
    metrics.update(loss=metrics["d_loss"], g_loss=g_loss, g_grad_norm=optax.tree.norm(grads))
    new_state = GANState(
        step=state.step + 1,
        g_params=g_params,
        g_batch_stats=g_batch_stats,
        g_opt_state=g_opt_state,
        g_ema_params=ema.update(state.g_ema_params, g_params, state.step),
        d_params=d_params,
        d_batch_stats=d_batch_stats,
        d_opt_state=d_opt_state,
    )
    return new_state, metrics

  def sample_averaged(state, latents, labels):
    """Images from the weight-averaged generator in inference mode."""
    variables = {"params": state.g_ema_params, "batch_stats": state.g_batch_stats}
    return apply_generator(variables, latents, labels, train=False).reshape(-1, *data_shape)

  def generate(state, key, num_images):
    latents = jax.random.normal(key, (num_images, latent_size))
    return sample_averaged(state, latents, contract.class_by_class(num_images, num_classes))

  def critic_score(state, examples):
    variables = {"params": state.d_params, "batch_stats": state.d_batch_stats}
    return apply_discriminator(variables, examples, None, train=False).reshape(-1)

  def eval_step(state, batch, key):
    """The critic in inference mode on held-out real examples and on as many samples (of the same classes)."""
    labels = batch["label"] if num_classes else None
    fakes = sample_averaged(state, jax.random.normal(key, (batch[data_key].shape[0], latent_size)), labels)
    variables = {"params": state.d_params, "batch_stats": state.d_batch_stats}
    real_logits = apply_discriminator(variables, batch[data_key], labels, train=False)
    fake_logits = apply_discriminator(variables, fakes, labels, train=False)
    per_example = {
        "loss": losses.discriminator_loss(gan_config.loss, real_logits, fake_logits),
        "d_real": real_logits,
        "d_fake": fake_logits,
    }
    return common.masked_sums(per_example, batch["mask"])

  return contract.Trainer(
      init,
      train_step,
      eval_step,
      batches_per_step=gan_config.n_critic,
      param_fields=("g_params", "d_params"),
      progress_metrics=("d_loss", "g_loss"),
      needs_labels=bool(num_classes),
      decoder=contract.Decoder(sample_averaged, latent_size, num_classes),
      sampler=contract.Sampler(generate),
      # A projection critic's score needs a label, which an anomaly does not have.
      critic=None if num_classes else contract.Critic(critic_score),
  )
