"""Restoration family: a network learns to undo a degradation (`config.task`), trained on pairs (degraded, clean)
made inside the step from clean patches (`config.data.patch_size`), so the data pipeline stays the same for all
three tasks and each pair is fresh.

- denoise: Gaussian noise of `config.restoration.sigma` (or a sigma drawn from [sigma, sigma_max] per image: blind
  denoising), DnCNN;
- super_resolution: bicubic downscaling by `config.restoration.scale`, a sub-pixel network;
- inpaint: missing regions (`config.restoration.mask`: center, boxes, strokes), a U-Net that sees the mask.

The loss (`config.restoration.loss`: l2 or l1 per pixel), the network (`config.model.architecture`) and the
degradation are config fields, so an ablation is an override. Pixels are in [0, 1]. See `genjax.data.degradations`.
"""

import flax
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

TASKS = {"denoise": "dncnn", "super_resolution": "subpixel", "inpaint": "unet"}  # Task -> its architecture.
LOSSES = ("l2", "l1")


@flax.struct.dataclass
class RestorationState:
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState


def check_config(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> None:
  options = config.restoration
  for value, valid, key in [
      (config.task, tuple(TASKS), "task"),
      (options.loss, LOSSES, "restoration.loss"),
      (options.mask, degradations.MASK_KINDS, "restoration.mask"),
  ]:
    if value not in valid:
      raise errors.UserError(f"config.{key}={value!r} is not one of {', '.join(valid)}.")
  if config.model.architecture != TASKS[config.task]:
    raise errors.UserError(
        f"config.task={config.task!r} takes config.model.architecture={TASKS[config.task]!r}, not "
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
  if config.task == "super_resolution":
    return config.restoration.scale
  if config.task == "inpaint":
    return 2 ** (len(config.model.channels) - 1)
  return 1


def _network(config: ml_collections.ConfigDict):
  model = config.model
  if config.task == "denoise":
    return restorers.DnCNN(model.depth, model.features)
  if config.task == "super_resolution":
    return restorers.SubPixelSR(config.restoration.scale, model.features, model.num_blocks)
  return restorers.InpaintingUNet(tuple(model.channels))


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the restoration family's pure functions for patches of `spec`. It restores (`contract.Restorer`)."""
  check_config(config, spec)
  options = config.restoration
  network = _network(config)
  apply = common.mixed_precision(network.apply, config.model.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  task, scale = config.task, options.scale
  sigma = options.sigma if options.sigma_max == options.sigma else (options.sigma, options.sigma_max)

  def degrade(clean, key):
    if task == "denoise":
      return degradations.add_noise(clean, key, sigma), None
    if task == "super_resolution":
      return degradations.downscale(clean, scale), None
    mask = degradations.masks(key, clean.shape[:3], options.mask)
    return clean * (1.0 - mask), mask

  def run(params, batch_stats, degraded, mask, train):
    variables = {"params": params, "batch_stats": batch_stats}
    arguments = (degraded, mask) if task == "inpaint" else (degraded,)
    if train:
      restored, updates = apply(variables, *arguments, train=True, mutable=["batch_stats"])
      return restored, updates.get("batch_stats", batch_stats)
    return apply(variables, *arguments, train=False), batch_stats

  def init(key):
    height, width, channels = spec.data_shape
    if task == "super_resolution":  # The network sees the low-resolution input.
      height, width = height // scale, width // scale
    example = jnp.zeros((1, height, width, channels))
    arguments = (example, jnp.zeros((1, height, width, 1))) if task == "inpaint" else (example,)
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
      restorer=contract.Restorer(task, degrade, restore, scale if task == "super_resolution" else 1, _multiple(config)),
  )
