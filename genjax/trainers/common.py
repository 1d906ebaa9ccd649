"""What trainer families share: the single-network train state and its steps, the optimiser and the one optimiser
update (`apply_gradients`), the weight average (`EMA`), and the pixel likelihoods that turn decoder outputs into
losses and images. The contract itself is `contract.Trainer`; the pieces of adversarial training are in
`trainers.adversarial`.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax import errors
from genjax import losses
from genjax.data import sources
from genjax.models import autoencoders
from genjax.trainers import contract


@flax.struct.dataclass
class TrainState:
  """State of a family with one network and one optimiser (autoencoder, VAE)."""

  step: jax.Array
  params: Any
  opt_state: Any


@flax.struct.dataclass
class AveragedTrainState(TrainState):
  """A `TrainState` that also carries a weight average of its parameters (see `EMA`). A subclass rather than an
  optional field, so that the checkpoints of states without an average keep their structure."""

  ema_params: Any


def image_shape(spec: sources.ExampleSpec, family: str) -> tuple[int, int, int]:
  """The (H, W, C) of a dataset's images; `UserError` for a family that needs images and data without them."""
  if not spec.is_image:
    raise errors.UserError(f"The {family} family trains on images; this dataset has {', '.join(spec.shapes)}.")
  return spec.data_shape


# Compute dtypes of activations, matmuls and convolutions (config.model.dtype). float16 is left out: without loss
# scaling its gradients underflow; bfloat16 has float32's range.
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def mixed_precision(apply_fn: Callable, dtype_name: str) -> Callable:
  """`apply_fn` (a flax `Module.apply`) computing in `dtype_name`: float parameters and float array arguments are
  cast to it on the way in, float outputs (updated batch statistics included) back to float32 on the way out.

  Parameters, optimiser states, batch statistics, losses and penalties thus stay float32, and gradients flow back
  through the casts as float32 (mixed precision as in Micikevicius et al. 2018, without loss scaling, which
  bfloat16's exponent range makes unnecessary).
  """
  if dtype_name not in COMPUTE_DTYPES:
    raise errors.UserError(f"config.model.dtype={dtype_name!r} is not one of {', '.join(COMPUTE_DTYPES)}.")
  dtype = COMPUTE_DTYPES[dtype_name]
  if dtype == jnp.float32:
    return apply_fn

  def cast(tree, to):
    is_float = lambda x: hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
    return jax.tree.map(lambda x: x.astype(to) if is_float(x) else x, tree)

  def apply(variables, *args, **kwargs):
    variables = {name: cast(tree, dtype) if name == "params" else tree for name, tree in variables.items()}
    return cast(apply_fn(variables, *cast(args, dtype), **kwargs), jnp.float32)

  return apply


OPTIMIZERS = ("adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear_decay", "steps")


def make_optimizer(optim_config: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Adam, AdamW or RMSProp with linear warm-up, a constant, cosine or linear-decay learning rate, and optional
  gradient clipping. RMSProp ignores b1 and weight_decay and uses b2 as its decay. "linear_decay" keeps the rate
  constant for the first half of `total_steps` and decays it linearly to 0 over the second (pix2pix and CycleGAN:
  n_epochs constant, then n_epochs_decay to 0). "steps" multiplies the rate by `optim.decay_factor` at each step
  of `optim.decay_at` (SRGAN's drop to a tenth, ESRGAN's halvings)."""
  if optim_config.name not in OPTIMIZERS:
    raise errors.UserError(f"config.optim.name={optim_config.name!r} is not one of {', '.join(OPTIMIZERS)}.")
  if optim_config.schedule not in SCHEDULES:
    raise errors.UserError(f"config.optim.schedule={optim_config.schedule!r} is not one of {', '.join(SCHEDULES)}.")
  if optim_config.schedule == "cosine":
    learning_rate = optax.warmup_cosine_decay_schedule(
        0.0, optim_config.lr, optim_config.warmup_steps, max(total_steps, optim_config.warmup_steps + 1)
    )
  elif optim_config.schedule == "linear_decay":
    half = max(total_steps // 2, optim_config.warmup_steps)
    pieces = [optax.constant_schedule(optim_config.lr), optax.linear_schedule(optim_config.lr, 0.0, total_steps - half)]
    boundaries = [half]
    if optim_config.warmup_steps:
      pieces.insert(0, optax.linear_schedule(0.0, optim_config.lr, optim_config.warmup_steps))
      boundaries.insert(0, optim_config.warmup_steps)
    learning_rate = optax.join_schedules(pieces, boundaries)
  elif optim_config.schedule == "steps":
    if "decay_at" not in optim_config or "decay_factor" not in optim_config:
      raise errors.UserError(
          'config.optim.schedule="steps" needs config.optim.decay_at (the steps where the rate drops) and '
          "config.optim.decay_factor (what it is multiplied by there)."
      )
    learning_rate = optax.piecewise_constant_schedule(
        optim_config.lr, {int(step): optim_config.decay_factor for step in optim_config.decay_at}
    )
  elif optim_config.warmup_steps:
    learning_rate = optax.linear_schedule(0.0, optim_config.lr, optim_config.warmup_steps)
  else:
    learning_rate = optim_config.lr
  if optim_config.name == "adam":
    optimizer = optax.adam(learning_rate, b1=optim_config.b1, b2=optim_config.b2)
  elif optim_config.name == "rmsprop":
    optimizer = optax.rmsprop(learning_rate, decay=optim_config.b2)
  else:
    optimizer = optax.adamw(
        learning_rate, b1=optim_config.b1, b2=optim_config.b2, weight_decay=optim_config.weight_decay
    )
  if optim_config.grad_clip_norm:
    optimizer = optax.chain(optax.clip_by_global_norm(optim_config.grad_clip_norm), optimizer)
  return optimizer


def apply_training_mode(apply_fn: Callable, params, batch_stats, *arguments):
  """`apply_fn` (a flax `Module.apply`) in training mode: its outputs, and the batch statistics (spectral norm's
  power iterations included) updated by this batch."""
  outputs, updates = apply_fn(
      {"params": params, "batch_stats": batch_stats}, *arguments, train=True, mutable=["batch_stats"]
  )
  return outputs, updates.get("batch_stats", batch_stats)


def apply_gradients(params, opt_state, grads, optimizer: optax.GradientTransformation):
  """One optimiser update: `(params, opt_state)` after descending `grads`. Every family's update goes through here."""
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


@dataclasses.dataclass(frozen=True)
class EMA:
  """An exponential moving average of weights, `ema <- decay * ema + (1 - decay) * weights` after each update.

  decay:      per update; 0 makes the average the weights themselves.
  start_step: before this step the average copies the weights (a warm start, as in ProGAN/BigGAN practice), so
              that it does not keep the random initialisation's weights for thousands of updates.
  """

  decay: float
  start_step: int = 0

  @classmethod
  def from_half_life(cls, half_life_images: float, batch_size: int, start_step: int = 0) -> "EMA":
    """The average whose weights halve after `half_life_images` examples, at `batch_size` examples per update:
    decay = 0.5 ** (batch_size / half_life_images) (StyleGAN's `ema_kimg`, in images rather than thousands), which
    keeps the same time constant in images when the batch size changes."""
    return cls(0.5 ** (batch_size / half_life_images), start_step)

  def update(self, ema_params, params, step: jax.Array):
    """The average after the update at `step` (counted from 0) produced `params`."""
    decay = jnp.where(step >= self.start_step, self.decay, 0.0)
    return jax.tree.map(lambda ema, w: decay * ema + (1.0 - decay) * w, ema_params, params)


def new_state(params, optimizer: optax.GradientTransformation, ema: EMA | None = None) -> TrainState:
  """A one-network state at step 0; with `ema`, an `AveragedTrainState` whose average starts at `params`."""
  step, opt_state = jnp.zeros((), jnp.int32), optimizer.init(params)
  if ema is None:
    return TrainState(step=step, params=params, opt_state=opt_state)
  return AveragedTrainState(step=step, params=params, opt_state=opt_state, ema_params=params)


def steps_from_per_example_metrics(
    per_example_metrics: Callable[[Any, contract.Batch, jax.Array, bool], dict[str, jax.Array]],
    optimizer: optax.GradientTransformation,
    ema: EMA | None = None,
):
  """The train and eval steps of a one-network family, from `per_example_metrics(params, batch, key, train)`,
  which maps a batch `[N, ...]` to `[N]` arrays, among them the "loss" to minimise.

  The train step treats its k stacked batches `[k, B, ...]` as one batch of k * B examples, descends the mean
  "loss", updates the state's weight average with `ema` (give the same `ema` to `new_state`) and reports the batch
  means of every metric plus the gradient norm; the eval step returns masked sums (see `contract.Trainer`).
  """

  def train_step(state: TrainState, batch: contract.Batch, key: jax.Array) -> tuple[TrainState, contract.Metrics]:
    examples = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batch)

    def loss_fn(params):
      metrics = jax.tree.map(jnp.mean, per_example_metrics(params, examples, key, True))
      return metrics["loss"], metrics

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    metrics["grad_norm"] = optax.tree.norm(grads)
    params, opt_state = apply_gradients(state.params, state.opt_state, grads, optimizer)
    updated = dict(step=state.step + 1, params=params, opt_state=opt_state)
    if ema is not None:
      updated["ema_params"] = ema.update(state.ema_params, params, state.step)
    return state.replace(**updated), metrics

  def eval_step(state: TrainState, batch: contract.Batch, key: jax.Array) -> contract.Metrics:
    return masked_sums(per_example_metrics(state.params, batch, key, False), batch["mask"])

  return train_step, eval_step


# Pixel likelihoods. Each maps decoder outputs to a per-example negative log-likelihood and to the mean image.
LIKELIHOOD_PIXEL_RANGES = {
    "bernoulli": (0.0, 1.0),  # Targets are probabilities of a white pixel: binarised or grey-level in [0, 1].
    "discretized_logistic": (-1.0, 1.0),  # Targets are 8-bit bin centres scaled to [-1, 1].
    "gaussian": None,  # Unit-variance Gaussian, i.e. squared error: any pixel range.
}


def check_encoder_decoder_config(config: ml_collections.ConfigDict, likelihoods: tuple[str, ...]) -> None:
  """Raises `UserError` unless the architecture exists and the likelihood is one of `likelihoods` and matches
  the data's pixel range and binarisation."""
  if config.model.architecture not in autoencoders.ARCHITECTURES:
    raise errors.UserError(
        f"config.model.architecture={config.model.architecture!r} is not one of "
        f"{', '.join(autoencoders.ARCHITECTURES)}."
    )
  likelihood, data_config = config.model.likelihood, config.data
  if likelihood not in likelihoods:
    raise errors.UserError(f"config.model.likelihood={likelihood!r} is not one of {', '.join(likelihoods)}.")
  required_range = LIKELIHOOD_PIXEL_RANGES[likelihood]
  if required_range is not None and tuple(data_config.pixel_range) != required_range:
    raise errors.UserError(
        f"The {likelihood} likelihood needs config.data.pixel_range={required_range}, "
        f"not {tuple(data_config.pixel_range)}."
    )
  if likelihood == "discretized_logistic" and data_config.binarize != "none":
    raise errors.UserError(
        "The discretized_logistic likelihood models 8-bit pixels; set config.data.binarize='none' "
        "(or use likelihood='bernoulli' for binarised data)."
    )


def encoder_decoder(model_config: ml_collections.ConfigDict, code_size: int, image_shape: tuple[int, int, int]):
  """The configured encoder (images -> `code_size` features) and decoder (-> the likelihood's parameters)."""
  channels = image_shape[2] * (2 if model_config.likelihood == "discretized_logistic" else 1)
  return autoencoders.encoder_decoder(
      model_config.architecture, model_config.widths, code_size, (*image_shape[:2], channels)
  )


def reconstruction_nll(likelihood: str, outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Negative log-likelihood of `targets` given decoder `outputs`, per example: `[N]` nats.

  For "gaussian" this is half the squared error (unit variance, constant dropped).
  """
  if likelihood == "bernoulli":
    return losses.bernoulli_nll(outputs, targets)
  if likelihood == "discretized_logistic":
    mean, log_scale = jnp.split(outputs, 2, axis=-1)
    return losses.discretized_logistic_nll(mean, log_scale, targets)
  return 0.5 * losses.squared_error(outputs, targets)


def likelihood_mean(likelihood: str, outputs: jax.Array) -> jax.Array:
  """The image a decoder output stands for (the likelihood's mean, or its location for the logistic)."""
  if likelihood == "bernoulli":
    return jax.nn.sigmoid(outputs)
  if likelihood == "discretized_logistic":
    return jnp.clip(jnp.split(outputs, 2, axis=-1)[0], -1.0, 1.0)
  return outputs


def masked_sums(per_example: dict[str, jax.Array], mask: jax.Array) -> contract.Metrics:
  """Sums per-example metrics over the real examples of a padded batch, adding their number as "count"."""
  sums = {name: jnp.sum(values * mask) for name, values in per_example.items()}
  sums["count"] = jnp.sum(mask)
  return sums
