"""The Gaussian diffusion process of DDPM (Ho et al. 2020) and what is computed from it: noise schedules, the
forward process q(x_t | x_0) and its posterior q(x_{t-1} | x_t, x_0), the conversions between what a network
predicts (noise, clean image or velocity), learned reverse variances, the simple and hybrid losses, ancestral (DDPM)
and DDIM sampling, DDIM inversion, classifier-free guidance and the variational bound in nats.

It knows nothing of networks, configs or files: a model is any function `model_fn(x_t, t) -> output` on a batch
`x_t [N, ..., C]` and integer timesteps `t [N]` in [0, T), whose output is the prediction `[N, ..., C]`, followed
on the last axis, where the process learns its variances, by the variance interpolation `[N, ..., C]`. Timesteps
are 0-based: t = 0 is the first noising step (the paper's t = 1), so alphas_cumprod[t] is the paper's
alpha-bar_{t+1}. Data are images scaled to [-1, 1], as in the paper. (The module is named for what it owns, as
improved-diffusion's `gaussian_diffusion.py` is, and so that it does not share a name with the family's trainer,
`genjax.trainers.diffusion`.)
"""

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from genjax import losses

SCHEDULES = ("linear", "cosine")
# What the network predicts: the noise (Ho et al.), the clean image, or the velocity
# v = sqrt(alpha-bar) noise - sqrt(1 - alpha-bar) x_0 (Salimans & Ho 2022).
PREDICTIONS = ("epsilon", "x0", "v")
# The reverse process's variance: fixed at beta_t ("fixed_large", Ho et al.'s CIFAR-10 setting) or at the forward
# posterior's beta-tilde_t ("fixed_small"), both the paper's; or learned between the two ("learned_range", Nichol &
# Dhariwal 2021: the network's second output v in [-1, 1] gives exp(frac log beta_t + (1 - frac) log beta-tilde_t)
# with frac = (v + 1) / 2). DDIM ignores the variance.
VARIANCES = ("fixed_large", "fixed_small", "learned_range")

ModelFn = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Process:
  """A forward process of T steps and the reverse process's parameterisation. Its arrays `[T]` are computed in
  float64 and stored as float32 (as improved-diffusion does, so that 1 - alpha-bar keeps its digits near t = 0)."""

  betas: np.ndarray
  alphas_cumprod: np.ndarray
  alphas_cumprod_prev: np.ndarray
  posterior_variance: np.ndarray
  posterior_log_variance: np.ndarray
  posterior_mean_coef_x0: np.ndarray
  posterior_mean_coef_xt: np.ndarray
  reverse_log_variance: np.ndarray
  log_betas: np.ndarray
  prediction: str
  learns_variance: bool

  @property
  def num_timesteps(self) -> int:
    return len(self.betas)


def linear_betas(num_timesteps: int) -> np.ndarray:
  """Ho et al.'s schedule, beta from 1e-4 to 0.02 in T = 1000 steps; for other T both ends scale by 1000 / T
  (improved-diffusion's rule, which keeps alpha-bar_T near 0), capped at 0.999 (reached for T < 50)."""
  scale = 1000.0 / num_timesteps
  return np.minimum(np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64), 0.999)


def cosine_betas(num_timesteps: int, offset: float = 0.008) -> np.ndarray:
  """Nichol & Dhariwal 2021: alpha-bar(t) = cos^2((t / T + s) / (1 + s) * pi / 2) with s = 0.008, betas capped at
  0.999 (the last step's would be 1)."""
  steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
  alpha_bar = np.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
  return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.999)


def make_process(schedule: str, num_timesteps: int, prediction: str = "epsilon", variance: str = "fixed_large"):
  """The process of `schedule` (one of SCHEDULES) over `num_timesteps`, for a network predicting `prediction` (one
  of PREDICTIONS), with the reverse variance `variance` (one of VARIANCES). ValueError for other names (the trainer
  refuses them first, naming the config key)."""
  if schedule not in SCHEDULES or prediction not in PREDICTIONS or variance not in VARIANCES:
    raise ValueError(f"Unknown schedule, prediction or variance: {schedule!r}, {prediction!r}, {variance!r}.")
  betas = linear_betas(num_timesteps) if schedule == "linear" else cosine_betas(num_timesteps)
  alphas_cumprod = np.cumprod(1.0 - betas)
  alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
  posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
  # The posterior variance at t = 0 is 0 (x_0 given x_0); where a log is taken, both references put the next one,
  # beta-tilde_1, in its place, and fixed_large's first variance is that too.
  clipped_posterior_variance = np.append(posterior_variance[1], posterior_variance[1:])
  large_variance = np.append(posterior_variance[1], betas[1:])
  reverse_variance = clipped_posterior_variance if variance == "fixed_small" else large_variance
  float32 = lambda x: np.asarray(x, np.float32)
  return Process(
      betas=float32(betas),
      alphas_cumprod=float32(alphas_cumprod),
      alphas_cumprod_prev=float32(alphas_cumprod_prev),
      posterior_variance=float32(posterior_variance),
      posterior_log_variance=float32(np.log(clipped_posterior_variance)),
      posterior_mean_coef_x0=float32(betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)),
      posterior_mean_coef_xt=float32((1.0 - alphas_cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod)),
      reverse_log_variance=float32(np.log(reverse_variance)),
      log_betas=float32(np.log(betas)),
      prediction=prediction,
      learns_variance=variance == "learned_range",
  )


def _at(values: np.ndarray, t: jax.Array, like: jax.Array) -> jax.Array:
  """`values[t]` for each example, shaped to broadcast against `like [N, ...]`."""
  return jnp.asarray(values)[t].reshape(-1, *([1] * (like.ndim - 1)))


def q_mean_variance(process: Process, x0: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The mean and variance of q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I)."""
  alpha_bar = _at(process.alphas_cumprod, t, x0)
  return jnp.sqrt(alpha_bar) * x0, jnp.broadcast_to(1.0 - alpha_bar, x0.shape)


def q_sample(process: Process, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
  """x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) noise: a draw of q(x_t | x_0) for standard normal noise."""
  alpha_bar = _at(process.alphas_cumprod, t, x0)
  return jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1.0 - alpha_bar) * noise


def q_posterior(process: Process, x0: jax.Array, x_t: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The mean and log variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7)."""
  mean = _at(process.posterior_mean_coef_x0, t, x_t) * x0 + _at(process.posterior_mean_coef_xt, t, x_t) * x_t
  return mean, jnp.broadcast_to(_at(process.posterior_log_variance, t, x_t), x_t.shape)


def output_channels(process: Process, image_channels: int) -> int:
  """The channels of the network's output: the prediction's, and as many again where it learns the variances."""
  return 2 * image_channels if process.learns_variance else image_channels


def prediction_and_log_variance(process: Process, output: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The network's output read as its prediction and the log variance of p(x_{t-1} | x_t): the process's fixed one,
  or learned, interpolated between log beta-tilde_t (v = -1) and log beta_t (v = 1) by the output's second half v
  (Nichol & Dhariwal 2021, eq. 15; v is not clipped, as in their code)."""
  if not process.learns_variance:
    return output, jnp.broadcast_to(_at(process.reverse_log_variance, t, output), output.shape)
  prediction, interpolation = jnp.split(output, 2, axis=-1)
  fraction = (interpolation + 1.0) / 2.0
  smallest, largest = _at(process.posterior_log_variance, t, output), _at(process.log_betas, t, output)
  return prediction, fraction * largest + (1.0 - fraction) * smallest


def _prediction(process: Process, output: jax.Array) -> jax.Array:
  return jnp.split(output, 2, axis=-1)[0] if process.learns_variance else output


def x0_and_epsilon(process: Process, prediction: jax.Array, x_t: jax.Array, t: jax.Array):
  """(x_0, noise) that the network's `prediction` at (x_t, t) stands for, whatever it predicts."""
  alpha_bar = _at(process.alphas_cumprod, t, x_t)
  signal, noise_scale = jnp.sqrt(alpha_bar), jnp.sqrt(1.0 - alpha_bar)
  if process.prediction == "epsilon":
    return (x_t - noise_scale * prediction) / signal, prediction
  if process.prediction == "x0":
    return prediction, (x_t - signal * prediction) / noise_scale
  return signal * x_t - noise_scale * prediction, noise_scale * x_t + signal * prediction


def training_target(process: Process, x0: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
  """What the network should predict for x_t = q_sample(x0, t, noise)."""
  if process.prediction == "epsilon":
    return noise
  if process.prediction == "x0":
    return x0
  alpha_bar = _at(process.alphas_cumprod, t, x0)
  return jnp.sqrt(alpha_bar) * noise - jnp.sqrt(1.0 - alpha_bar) * x0


def simple_loss(process: Process, prediction: jax.Array, x0: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
  """Ho et al.'s L_simple generalised to the prediction type: the mean over pixels of the squared error of the
  prediction against its target, per example `[N]`."""
  return losses.squared_error(prediction, training_target(process, x0, noise, t)) / math.prod(x0.shape[1:])


def guided(process: Process, conditional: jax.Array, unconditional: jax.Array, scale: float) -> jax.Array:
  """Classifier-free guidance (Ho & Salimans 2021) of the network's outputs: the prediction becomes (1 + w) *
  conditional - w * unconditional, so w = 0 is the conditional model. Applied to the prediction directly: noise,
  clean-image and velocity predictions are affine maps of each other at a given (x_t, t) whose coefficients are
  shared, so guiding any one of them is guiding the noise prediction. Learned variances are the conditional
  model's (as in GLIDE's code)."""
  prediction = (1.0 + scale) * _prediction(process, conditional) - scale * _prediction(process, unconditional)
  if not process.learns_variance:
    return prediction
  return jnp.concatenate([prediction, jnp.split(conditional, 2, axis=-1)[1]], axis=-1)


def p_mean_log_variance(process: Process, model_fn: ModelFn, x_t: jax.Array, t: jax.Array, clip: bool):
  """The reverse step p(x_{t-1} | x_t): its mean, its log variance and the predicted x_0 (clipped to [-1, 1] with
  `clip`, before the mean is formed from it)."""
  prediction, log_variance = prediction_and_log_variance(process, model_fn(x_t, t), t)
  x0, _ = x0_and_epsilon(process, prediction, x_t, t)
  if clip:
    x0 = jnp.clip(x0, -1.0, 1.0)
  mean, _ = q_posterior(process, x0, x_t, t)
  return mean, log_variance, x0


def _timesteps(num_examples: int, t) -> jax.Array:
  return jnp.full((num_examples,), t, jnp.int32)


def ddpm_sample(process: Process, model_fn: ModelFn, x_T: jax.Array, key: jax.Array, clip: bool = True) -> jax.Array:
  """Ancestral sampling (Ho et al. Algorithm 2) from x_T `[N, ...]` through all T steps, as one `lax.scan`; the step
  at t draws its noise from `fold_in(key, t)`, and the last step (t = 0) adds none."""

  def step(x, t):
    mean, log_variance, _ = p_mean_log_variance(process, model_fn, x, _timesteps(x.shape[0], t), clip)
    noise = jax.random.normal(jax.random.fold_in(key, t), x.shape, x.dtype)
    return mean + jnp.where(t > 0, jnp.exp(0.5 * log_variance), 0.0) * noise, None

  x0, _ = jax.lax.scan(step, x_T, jnp.arange(process.num_timesteps - 1, -1, -1))
  return x0


def ddim_timesteps(num_timesteps: int, num_steps: int) -> np.ndarray:
  """The `num_steps` timesteps (ascending, 1 <= num_steps <= T) that DDIM visits: evenly spread over [0, T - 1] and
  rounded (distinct since their spacing is at least 1), always including 0 and, from two steps, T - 1."""
  if not 1 <= num_steps <= num_timesteps:
    raise ValueError(f"DDIM takes between 1 and {num_timesteps} steps, not {num_steps}.")
  return np.round(np.linspace(0, num_timesteps - 1, num_steps)).astype(np.int32)


def _ddim_schedule(process: Process, num_steps: int):
  """The visited timesteps and, for each, alpha-bar there and at the previous visited one (1 before the first)."""
  timesteps = ddim_timesteps(process.num_timesteps, num_steps)
  alpha_bar = process.alphas_cumprod[timesteps]
  return timesteps, alpha_bar, np.append(np.float32(1.0), alpha_bar[:-1])


def ddim_sample(
    process: Process,
    model_fn: ModelFn,
    x_T: jax.Array,
    num_steps: int,
    eta: float = 0.0,
    key: jax.Array | None = None,
    clip: bool = True,
) -> jax.Array:
  """DDIM (Song et al. 2021, eq. 12) from x_T `[N, ...]` in `num_steps` steps, as one `lax.scan`. eta = 0 is the
  deterministic sampler (no key needed); eta = 1 with T steps is ancestral sampling with the fixed_small variance.
  The step at visited timestep t draws its noise from `fold_in(key, t)`. With `clip`, the predicted x_0 is clipped
  to [-1, 1] and the noise re-derived from it."""
  timesteps, alpha_bars, previous_alpha_bars = _ddim_schedule(process, num_steps)

  def step(x, scanned):
    t, alpha_bar, previous_alpha_bar = scanned
    timesteps = _timesteps(x.shape[0], t)
    x0, noise = x0_and_epsilon(process, _prediction(process, model_fn(x, timesteps)), x, timesteps)
    if clip:
      x0 = jnp.clip(x0, -1.0, 1.0)
      noise = (x - jnp.sqrt(alpha_bar) * x0) / jnp.sqrt(1.0 - alpha_bar)
    sigma = eta * jnp.sqrt((1.0 - previous_alpha_bar) / (1.0 - alpha_bar) * (1.0 - alpha_bar / previous_alpha_bar))
    x = jnp.sqrt(previous_alpha_bar) * x0 + jnp.sqrt(1.0 - previous_alpha_bar - sigma**2) * noise
    if eta:
      x = x + sigma * jax.random.normal(jax.random.fold_in(key, t), x.shape, x.dtype)
    return x, None

  x0, _ = jax.lax.scan(step, x_T, (timesteps[::-1], alpha_bars[::-1], previous_alpha_bars[::-1]))
  return x0


def ddim_invert(process: Process, model_fn: ModelFn, x0: jax.Array, num_steps: int) -> jax.Array:
  """The x_T from which deterministic DDIM (eta = 0, no clipping) in `num_steps` steps returns to about `x0`: each
  DDIM step run backwards, the noise that the step at t would use estimated at the point reached so far (the
  previous visited timestep's x) rather than at x_t, which is not known yet (Song et al. 2021, section 4.3). The
  round trip is exact where the prediction does not change over a step, and close when steps are small."""
  timesteps, alpha_bars, previous_alpha_bars = _ddim_schedule(process, num_steps)

  def step(x, scanned):
    t, alpha_bar, previous_alpha_bar = scanned
    timesteps = _timesteps(x.shape[0], t)
    _, noise = x0_and_epsilon(process, _prediction(process, model_fn(x, timesteps)), x, timesteps)
    x0_estimate = (x - jnp.sqrt(1.0 - previous_alpha_bar) * noise) / jnp.sqrt(previous_alpha_bar)
    return jnp.sqrt(alpha_bar) * x0_estimate + jnp.sqrt(1.0 - alpha_bar) * noise, None

  x_T, _ = jax.lax.scan(step, x0, (timesteps, alpha_bars, previous_alpha_bars))
  return x_T


def discretized_gaussian_nll(x: jax.Array, mean: jax.Array, log_variance: jax.Array, num_bins: int = 256):
  """-log P(x) under a Gaussian discretised into `num_bins` bins on [-1, 1] (Ho et al.'s decoder p(x_0 | x_1)),
  summed per example: `[N, ...] -> [N]` nats. `x` holds bin centres (8-bit pixels scaled to [-1, 1]); the edge bins
  take the tails, so the bins' probabilities sum to one. A bin's mass is floored at 1e-12, as in the reference."""
  half_bin = 1.0 / (num_bins - 1)
  inv_std = jnp.exp(-0.5 * log_variance)
  upper, lower = inv_std * (x - mean + half_bin), inv_std * (x - mean - half_bin)
  log_cdf_upper = jax.scipy.special.log_ndtr(upper)
  log_one_minus_cdf_lower = jax.scipy.special.log_ndtr(-lower)
  bin_mass = jax.scipy.special.ndtr(upper) - jax.scipy.special.ndtr(lower)
  log_prob = jnp.where(
      x < -1.0 + half_bin,
      log_cdf_upper,
      jnp.where(x > 1.0 - half_bin, log_one_minus_cdf_lower, jnp.log(jnp.maximum(bin_mass, 1e-12))),
  )
  return -jnp.sum(log_prob.reshape(x.shape[0], -1), axis=-1)


def prior_kl(process: Process, x0: jax.Array) -> jax.Array:
  """KL(q(x_T | x_0) || N(0, I)), the bound's prior term, per example `[N]` nats."""
  mean, variance = q_mean_variance(process, x0, _timesteps(x0.shape[0], process.num_timesteps - 1))
  return losses.standard_normal_kl(mean, jnp.log(variance))


def bound_term(process: Process, model_fn: ModelFn, x0: jax.Array, x_t: jax.Array, t: jax.Array) -> jax.Array:
  """The variational bound's term at each example's timestep t, per example `[N]` nats: KL(q(x_{t-1} | x_t, x_0) ||
  p(x_{t-1} | x_t)) for t > 0, the discretised Gaussian decoder's -log p(x_0 | x_1) at t = 0. The predicted x_0 is
  not clipped."""
  mean, log_variance, _ = p_mean_log_variance(process, model_fn, x_t, t, clip=False)
  true_mean, true_log_variance = q_posterior(process, x0, x_t, t)
  flat = lambda x: x.reshape(x.shape[0], -1)
  kl = losses.diagonal_gaussian_kl(flat(true_mean), flat(true_log_variance), flat(mean), flat(log_variance))
  return jnp.where(t == 0, discretized_gaussian_nll(x0, mean, log_variance), kl)


def hybrid_loss(
    process: Process, output: jax.Array, x0: jax.Array, x_t: jax.Array, noise: jax.Array, t: jax.Array, weight: float
) -> jax.Array:
  """Nichol & Dhariwal's L_hybrid = L_simple + lambda L_vlb for a network that learns its variances, per example
  `[N]`: the simple loss of its prediction, plus `weight` (lambda, 0.001 in the paper) times T times the bound's
  term at t in bits per dimension (L_vlb is the sum of T such terms; improved-diffusion's code adds the term alone,
  which is the same at T = 1,000). The term sees the prediction with its gradient stopped, so that the bound trains
  the variances and the simple loss the means, as in the paper."""
  prediction, interpolation = jnp.split(output, 2, axis=-1)
  frozen_mean = jnp.concatenate([jax.lax.stop_gradient(prediction), interpolation], axis=-1)
  term_nats = bound_term(process, lambda x_t, t: frozen_mean, x0, x_t, t)
  term_bits_per_dim = term_nats / (math.log(2.0) * math.prod(x0.shape[1:]))
  return simple_loss(process, prediction, x0, noise, t) + weight * process.num_timesteps * term_bits_per_dim


def variational_bound(
    process: Process, model_fn: ModelFn, x0: jax.Array, key: jax.Array, timesteps_per_chunk: int = 10
) -> jax.Array:
  """Ho et al.'s variational bound on -log p(x_0) (eq. 5), per example `[N]` nats, for x_0 of 8-bit pixels scaled
  to [-1, 1]: the prior term, plus every one of the T terms, KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for
  t > 0 and the discretised Gaussian decoder's -log p(x_0 | x_1) at t = 0, each at one draw x_t ~ q(x_t | x_0)
  with noise from `fold_in(key, t)` (an unbiased estimate of the bound; the sum over t is exact, not sampled). The
  predicted x_0 is not clipped. The T network passes run `timesteps_per_chunk` timesteps at a time."""

  def term(t):
    timesteps = _timesteps(x0.shape[0], t)
    x_t = q_sample(process, x0, timesteps, jax.random.normal(jax.random.fold_in(key, t), x0.shape, x0.dtype))
    return bound_term(process, model_fn, x0, x_t, timesteps)

  chunk = min(timesteps_per_chunk, process.num_timesteps)
  terms = jax.lax.map(term, jnp.arange(process.num_timesteps), batch_size=chunk)
  return prior_kl(process, x0) + jnp.sum(terms, axis=0)
