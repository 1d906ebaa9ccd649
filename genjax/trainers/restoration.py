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
from genjax.data import degradations
from genjax.data import sources
from genjax.models import restorers
from genjax.trainers import common
from genjax.trainers import contract

LOSSES = ("l2", "l1")


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
}


@flax.struct.dataclass
class RestorationState:
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState


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
  multiple = _multiple(config)
  if spec.data_shape[0] % multiple or spec.data_shape[1] % multiple:
    raise errors.UserError(
        f"Training patches of {spec.data_shape[0]}x{spec.data_shape[1]} must have sides that {multiple} divides for "
        f"this task; set config.data.patch_size to a multiple of {multiple}."
    )


def _multiple(config: ml_collections.ConfigDict) -> int:
  """What clean images' sides must be a multiple of: the degradation's scale times the network's multiple."""
  scale = degradations.TASKS[config.task].scale(config.restoration)
  return scale * ARCHITECTURES[config.model.architecture].multiple(config)


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the restoration family's pure functions for patches of `spec`. It restores (`contract.Restorer`)."""
  check_config(config, spec)
  options = config.restoration
  degradation = degradations.TASKS[config.task]
  architecture = ARCHITECTURES[config.model.architecture]
  network = architecture.build(config)
  apply = common.mixed_precision(network.apply, config.model.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  degrade = degradation.make_degrade(options)
  scale = degradation.scale(options)

  def run(params, batch_stats, degraded, mask, train):
    variables = {"params": params, "batch_stats": batch_stats}
    arguments = (degraded, mask) if architecture.sees_mask else (degraded,)
    if train:
      restored, updates = apply(variables, *arguments, train=True, mutable=["batch_stats"])
      return restored, updates.get("batch_stats", batch_stats)
    return apply(variables, *arguments, train=False), batch_stats

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

  return contract.Trainer(
      init,
      train_step,
      eval_step,
      progress_metrics=("loss", "psnr"),
      restorer=contract.Restorer(degradation, degrade, restore, scale, _multiple(config)),
  )
