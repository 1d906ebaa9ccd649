"""Restoration family: a network learns to undo a degradation (`config.task`, a task of `degradations.TASKS`),
trained on pairs (degraded, clean) made inside the step from clean patches (`config.data.patch_size`), so the data
pipeline stays the same for every task and each pair is fresh.

- denoise: Gaussian noise of `config.restoration.sigma` (or a sigma drawn from [sigma, sigma_max] per image: blind
  denoising), DnCNN;
- super_resolution: bicubic downscaling by `config.restoration.scale`, a sub-pixel network;
- inpaint: missing regions (`config.restoration.mask`: center, boxes, strokes), a U-Net that sees the mask.

The loss (`config.restoration.loss`: l2 or l1 per pixel), the network (`config.model.architecture`, one of
`ARCHITECTURES` that the task allows) and the degradation are config fields, so an ablation is an override. Pixels
are in [0, 1]. What a task implies beyond its network is read from its `degradations.Degradation`, never from its
name.

The perceptual and adversarial recipe of SRGAN and ESRGAN adds, by weight (0 leaves a term out):
- `restoration.perceptual_weight`: the distance (`perceptual_criterion`, l1 or l2, a mean over features) between
  the VGG features (`perceptual_network`: 16 or 19, at `perceptual_layer`) of the restored and the clean image;
  the VGG is a frozen network (`contract.FrozenNetwork`) with torchvision's weights;
- `restoration.adversarial_weight`: the adversarial loss (`adversarial_loss`, a GAN loss or ESRGAN's
  relativistic average) under SRGAN's critic (`models.restorers.SRCritic`, `config.model.d_features`), trained
  through the adversarial kit, one update per step, with the generator's optimiser settings;
- `restoration.pixel_weight` scales the per-pixel loss.
Such a run keeps an average of the generator's weights (`restoration.ema_decay`), which restores and is evaluated,
and starts from a run trained on pixels alone (`config.init_from`: its generator's weights, see `warm_start`).
"""

import dataclasses
from collections.abc import Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax import errors
from genjax import losses
from genjax.data import degradations
from genjax.data import sources
from genjax.models import restorers
from genjax.models import vgg
from genjax.trainers import adversarial
from genjax.trainers import common
from genjax.trainers import contract

LOSSES = ("l2", "l1")
ADVERSARIAL_LOSSES = losses.GAN_LOSSES + losses.RELATIVISTIC_LOSSES
PERCEPTUAL_NETWORK = "vgg"


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A restoration network, built from the config.

  build:     config -> the flax module, called as `network(degraded, mask, train=)` if `sees_mask`, else
             `network(degraded, train=)`.
  sees_mask: whether the network takes the mask of missing pixels as an input.
  multiple:  config -> what the network's input sides must be a multiple of (its poolings).
  """

  build: Callable[[ml_collections.ConfigDict], nn.Module]
  sees_mask: bool
  multiple: Callable[[ml_collections.ConfigDict], int]


ARCHITECTURES = {
    "dncnn": Architecture(
        lambda config: restorers.DnCNN(config.model.depth, config.model.features), False, lambda config: 1
    ),
    "subpixel": Architecture(
        lambda config: restorers.SubPixelSR(config.restoration.scale, config.model.features, config.model.num_blocks),
        False,
        lambda config: 1,
    ),
    "unet": Architecture(
        lambda config: restorers.InpaintingUNet(tuple(config.model.channels)),
        True,
        lambda config: 2 ** (len(config.model.channels) - 1),
    ),
    "srresnet": Architecture(
        lambda config: restorers.SRResNet(config.restoration.scale, config.model.features, config.model.num_blocks),
        False,
        lambda config: 1,
    ),
    "rrdb": Architecture(
        lambda config: restorers.RRDBNet(
            config.restoration.scale, config.model.features, config.model.num_blocks, config.model.growth
        ),
        False,
        lambda config: 1,
    ),
}


@flax.struct.dataclass
class RestorationState:
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState


@flax.struct.dataclass
class AdversarialRestorationState:
  """The generator (as `RestorationState`) with the average of its weights, and the critic."""

  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState
  ema_params: dict
  d_params: dict
  d_batch_stats: dict
  d_opt_state: optax.OptState


def _is_perceptual_or_adversarial(options: ml_collections.ConfigDict) -> bool:
  return bool(options.perceptual_weight or options.adversarial_weight)


def check_config(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> None:
  options = config.restoration
  for value, valid, key in [
      (config.task, tuple(degradations.TASKS), "task"),
      (options.loss, LOSSES, "restoration.loss"),
      (options.mask, degradations.MASK_KINDS, "restoration.mask"),
  ]:
    if value not in valid:
      raise errors.UserError(f"config.{key}={value!r} is not one of {', '.join(valid)}.")
  allowed = degradations.TASKS[config.task].architectures
  if config.model.architecture not in allowed:
    raise errors.UserError(
        f"config.task={config.task!r} takes config.model.architecture={' or '.join(map(repr, allowed))}, not "
        f"{config.model.architecture!r}."
    )
  if tuple(config.data.pixel_range) != (0.0, 1.0):
    raise errors.UserError("Restoration works on pixels in [0, 1]: set config.data.pixel_range=(0.0, 1.0).")
  common.image_shape(spec, "restoration")
  if options.scale not in (2, 3, 4):
    raise errors.UserError(f"config.restoration.scale={options.scale} must be 2, 3 or 4.")
  if not 0 < options.sigma <= options.sigma_max or options.sigma_max > 255:
    raise errors.UserError(
        f"config.restoration.sigma={options.sigma} and sigma_max={options.sigma_max} must satisfy 0 < sigma <= "
        "sigma_max <= 255 (sigmas on the 8-bit scale)."
    )
  for key in ("pixel_weight", "perceptual_weight", "adversarial_weight"):
    if options[key] < 0:
      raise errors.UserError(f"config.restoration.{key}={options[key]} must be >= 0 (0 leaves the term out).")
  if not 0.0 <= options.ema_decay < 1.0:
    raise errors.UserError(f"config.restoration.ema_decay={options.ema_decay} must be in [0, 1) (0: no average).")
  if options.perceptual_weight:
    _check_perceptual(options)
  if options.adversarial_weight:
    if options.adversarial_loss not in ADVERSARIAL_LOSSES:
      raise errors.UserError(
          f"config.restoration.adversarial_loss={options.adversarial_loss!r} is not one of "
          f"{', '.join(ADVERSARIAL_LOSSES)}."
      )
    if "d_features" not in config.model:
      raise errors.UserError(
          "config.restoration.adversarial_weight > 0 trains a critic: set its width, config.model.d_features "
          "(64 as published)."
      )
  multiple = _multiple(config)
  if spec.data_shape[0] % multiple or spec.data_shape[1] % multiple:
    raise errors.UserError(
        f"Training patches of {spec.data_shape[0]}x{spec.data_shape[1]} must have sides that {multiple} divides for "
        f"this task; set config.data.patch_size to a multiple of {multiple}."
    )


def _check_perceptual(options: ml_collections.ConfigDict) -> None:
  if options.perceptual_network not in vgg.BLOCKS:
    raise errors.UserError(
        f"config.restoration.perceptual_network={options.perceptual_network} is not one of "
        f"{', '.join(map(str, vgg.BLOCKS))} (VGG16 or VGG19)."
    )
  layers = vgg.layer_names(options.perceptual_network)
  if options.perceptual_layer not in layers:
    raise errors.UserError(
        f"config.restoration.perceptual_layer={options.perceptual_layer!r} is no layer of "
        f"VGG{options.perceptual_network}: one of {', '.join(layers)}."
    )
  if options.perceptual_criterion not in LOSSES:
    raise errors.UserError(
        f"config.restoration.perceptual_criterion={options.perceptual_criterion!r} is not one of {', '.join(LOSSES)}."
    )


def _multiple(config: ml_collections.ConfigDict) -> int:
  """What clean images' sides must be a multiple of: the degradation's scale times the network's multiple."""
  scale = degradations.TASKS[config.task].scale(config.restoration)
  return scale * ARCHITECTURES[config.model.architecture].multiple(config)


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the restoration family's pure functions for patches of `spec`. It restores (`contract.Restorer`)."""
  check_config(config, spec)
  if _is_perceptual_or_adversarial(config.restoration):
    return _make_perceptual_trainer(config, spec)
  options = config.restoration
  degradation = degradations.TASKS[config.task]
  architecture = ARCHITECTURES[config.model.architecture]
  network = architecture.build(config)
  apply = common.mixed_precision(network.apply, config.model.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  degrade = degradation.make_degrade(options)
  scale = degradation.scale(options)

  def run(params, batch_stats, degraded, mask, train):
    arguments = (degraded, mask) if architecture.sees_mask else (degraded,)
    if train:
      return common.apply_training_mode(apply, params, batch_stats, *arguments)
    return apply({"params": params, "batch_stats": batch_stats}, *arguments, train=False), batch_stats

  def init(key):
    height, width, channels = spec.data_shape
    height, width = height // scale, width // scale  # The network sees the degraded input.
    example = jnp.zeros((1, height, width, channels))
    arguments = (example, jnp.zeros((1, height, width, 1))) if architecture.sees_mask else (example,)
    variables = network.init(key, *arguments, train=False)
    params = variables["params"]
    return RestorationState(jnp.zeros((), jnp.int32), params, variables.get("batch_stats", {}), optimizer.init(params))

  def per_image(restored, clean, mask):
    error = restored - clean
    loss = jnp.mean(jnp.square(error) if options.loss == "l2" else jnp.abs(error), axis=(1, 2, 3))
    mse = jnp.mean(jnp.square(jnp.clip(restored, 0.0, 1.0) - clean), axis=(1, 2, 3))
    # Capped at 100 dB: a patch restored exactly (a black one, in inpainting) would otherwise read as divergence.
    metrics = {"loss": loss, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}
    if mask is not None:  # The error where pixels were missing, what inpainting is about.
      metrics["hole_mse"] = jnp.sum(jnp.square(error) * mask, axis=(1, 2, 3)) / jnp.maximum(
          jnp.sum(mask, axis=(1, 2, 3)) * clean.shape[-1], 1.0
      )
    return metrics

  def train_step(state, batch, key):
    clean = batch[sources.IMAGE].reshape(-1, *spec.data_shape)
    degraded, mask = degrade(clean, key)

    def loss_fn(params):
      restored, batch_stats = run(params, state.batch_stats, degraded, mask, train=True)
      metrics = jax.tree.map(jnp.mean, per_image(restored, clean, mask))
      return metrics["loss"], (metrics, batch_stats)

    grads, (metrics, batch_stats) = jax.grad(loss_fn, has_aux=True)(state.params)
    metrics["grad_norm"] = optax.tree.norm(grads)
    params, opt_state = common.apply_gradients(state.params, state.opt_state, grads, optimizer)
    return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state), metrics

  def eval_step(state, batch, key):
    clean = batch[sources.IMAGE]
    degraded, mask = degrade(clean, key)
    restored, _ = run(state.params, state.batch_stats, degraded, mask, train=False)
    return common.masked_sums(per_image(restored, clean, mask), batch["mask"])

  def restore(state, degraded, mask=None):
    return run(state.params, state.batch_stats, degraded, mask, train=False)[0]

  def warm_start(state, pretrained):
    """This run's state with the network of `pretrained`, a run of the same architecture; the optimiser starts
    afresh."""
    return state.replace(params=pretrained.params, batch_stats=pretrained.batch_stats)

  return contract.Trainer(
      init,
      train_step,
      eval_step,
      progress_metrics=("loss", "psnr"),
      restorer=contract.Restorer(degradation, degrade, restore, scale, _multiple(config)),
      warm_start=warm_start,
  )


def _per_pixel(loss: str, a: jax.Array, b: jax.Array) -> jax.Array:
  """The mean l1 or l2 distance per example of `[N, ...]` arrays: `[N]`."""
  error = (a - b).reshape(a.shape[0], -1)
  return jnp.mean(jnp.square(error) if loss == "l2" else jnp.abs(error), axis=1)


def perceptual_network(options: ml_collections.ConfigDict) -> contract.FrozenNetwork:
  """The VGG whose features the perceptual loss compares, with torchvision's ImageNet weights (the file at
  `options.perceptual_weights`, else the cache, else a verified download)."""
  depth = options.perceptual_network

  def load(data):
    del data  # VGG takes any image.
    # Imported here: genjax.feature_networks reads runs, which build trainers.
    from genjax.feature_networks import vgg_weights

    return vgg_weights.vgg_variables(
        depth, options.perceptual_weights or None, option_name="config.restoration.perceptual_weights"
    )

  return contract.FrozenNetwork(
      load=load,
      description=f"VGG{depth} with torchvision's ImageNet weights, features at {options.perceptual_layer}",
  )


def _make_perceptual_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """The SRGAN/ESRGAN recipe: the pixel loss, plus the perceptual and adversarial losses by weight (see the module
  docstring)."""
  options = config.restoration
  degradation = degradations.TASKS[config.task]
  architecture = ARCHITECTURES[config.model.architecture]
  network = architecture.build(config)
  apply = common.mixed_precision(network.apply, config.model.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  degrade = degradation.make_degrade(options)
  scale = degradation.scale(options)
  ema = common.EMA(options.ema_decay)
  features_of = vgg.VGG(options.perceptual_network, (options.perceptual_layer,), jax.lax.Precision.DEFAULT)
  critic = restorers.SRCritic(config.model.get("d_features", 64))
  critic_training = adversarial.CriticTraining(
      common.mixed_precision(critic.apply, config.model.dtype), options.adversarial_loss, optimizer
  )
  frozen_networks = {PERCEPTUAL_NETWORK: perceptual_network(options)} if options.perceptual_weight else {}

  def run(params, batch_stats, degraded, train):
    if train:
      return common.apply_training_mode(apply, params, batch_stats, degraded)
    return apply({"params": params, "batch_stats": batch_stats}, degraded, train=False), batch_stats

  def init(key):
    generator_key, critic_key = jax.random.split(key)
    height, width, channels = spec.data_shape
    variables = network.init(generator_key, jnp.zeros((1, height // scale, width // scale, channels)), train=False)
    d_variables = critic.init(critic_key, jnp.zeros((1, height, width, channels)), None, train=False)
    params, d_params = variables["params"], d_variables["params"]
    return AdversarialRestorationState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=optimizer.init(params),
        ema_params=params,
        d_params=d_params,
        d_batch_stats=d_variables.get("batch_stats", {}),
        d_opt_state=optimizer.init(d_params),
    )

  def perceptual_distance(vgg_variables, restored, clean):
    # The restored image is not clipped: its gradient must reach pixels outside [0, 1] too.
    pair = vgg.imagenet_normalize(jnp.concatenate([restored, clean]), (0.0, 1.0))
    features = features_of.apply(vgg_variables, pair)[options.perceptual_layer]
    restored_features, clean_features = jnp.split(features, 2)
    return _per_pixel(options.perceptual_criterion, restored_features, jax.lax.stop_gradient(clean_features))

  def train_step(state, batch, key, frozen=None):
    clean = batch[sources.IMAGE].reshape(-1, *spec.data_shape)
    degrade_key, critic_key = jax.random.split(key)
    degraded, _ = degrade(clean, degrade_key)
    restored_now, _ = run(state.params, state.batch_stats, degraded, train=True)
    metrics = {}
    d_params, d_batch_stats, d_opt_state = state.d_params, state.d_batch_stats, state.d_opt_state
    if options.adversarial_weight:
      d_params, d_batch_stats, d_opt_state, critic_metrics = adversarial.critic_update(
          critic_training,
          d_params,
          d_batch_stats,
          d_opt_state,
          real=clean,
          fakes=restored_now,
          conditioning=None,
          key=critic_key,
          update_index=state.step,
      )
      metrics.update({name: critic_metrics[name] for name in ("d_loss", "d_real", "d_fake")})

    def loss_fn(params):
      restored, batch_stats = run(params, state.batch_stats, degraded, train=True)
      terms = {"pixel_loss": jnp.mean(_per_pixel(options.loss, restored, clean))}
      loss = options.pixel_weight * terms["pixel_loss"]
      if options.perceptual_weight:
        terms["perceptual_loss"] = jnp.mean(perceptual_distance(frozen[PERCEPTUAL_NETWORK], restored, clean))
        loss += options.perceptual_weight * terms["perceptual_loss"]
      if options.adversarial_weight:
        terms["adversarial_loss"] = adversarial.generator_loss(
            critic_training, d_params, d_batch_stats, restored, None, real=clean
        )
        loss += options.adversarial_weight * terms["adversarial_loss"]
      mse = jnp.mean(jnp.square(jnp.clip(restored, 0.0, 1.0) - clean), axis=(1, 2, 3))
      terms["psnr"] = jnp.mean(-10.0 * jnp.log10(jnp.maximum(mse, 1e-10)))
      return loss, ({**terms, "loss": loss}, batch_stats)

    grads, (terms, batch_stats) = jax.grad(loss_fn, has_aux=True)(state.params)
    params, opt_state = common.apply_gradients(state.params, state.opt_state, grads, optimizer)
    new_state = state.replace(
        step=state.step + 1,
        params=params,
        batch_stats=batch_stats,
        opt_state=opt_state,
        ema_params=ema.update(state.ema_params, params, state.step),
        d_params=d_params,
        d_batch_stats=d_batch_stats,
        d_opt_state=d_opt_state,
    )
    return new_state, {**metrics, **terms, "grad_norm": optax.tree.norm(grads)}

  def restore(state, degraded, mask=None):
    del mask  # Super-resolution needs none.
    return run(state.ema_params, state.batch_stats, degraded, train=False)[0]

  def eval_step(state, batch, key):
    clean = batch[sources.IMAGE]
    degraded, _ = degrade(clean, key)
    restored = restore(state, degraded)
    mse = jnp.mean(jnp.square(jnp.clip(restored, 0.0, 1.0) - clean), axis=(1, 2, 3))
    pixel_loss = _per_pixel(options.loss, restored, clean)
    per_image = {"loss": pixel_loss, "pixel_loss": pixel_loss, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}
    return common.masked_sums(per_image, batch["mask"])

  def warm_start(state, pretrained):
    """This run's state with the generator of `pretrained` (a run of the same architecture trained on pixels, say):
    its weights and batch statistics, which the average starts from too; the critic and both optimisers start
    afresh, as ESRGAN's GAN phase does."""
    return state.replace(params=pretrained.params, batch_stats=pretrained.batch_stats, ema_params=pretrained.params)

  return contract.Trainer(
      init,
      train_step,
      eval_step,
      param_fields=("params", "d_params") if options.adversarial_weight else ("params",),
      progress_metrics=("loss", "psnr", *(("d_loss",) if options.adversarial_weight else ())),
      frozen_networks=frozen_networks,
      restorer=contract.Restorer(degradation, degrade, restore, scale, _multiple(config)),
      warm_start=warm_start,
  )
