"""The adversarial kit: the pieces of adversarial training as pure functions that a family composes (the GAN family
does; a translator, a super-resolution GAN or a style-based generator compose the same pieces instead of copying a
trainer).

- `CriticTraining`: how a critic is trained (its network, loss, optimiser, penalty, weight clipping), static.
- `critic_update`: one critic update on real examples and fakes that the caller made, however it made them: a
  generator from latents, a translator from input images (fakes = G(input)), a super-resolution network from
  low-resolution images (fakes = G(low_res)).
- `generator_loss`: the adversarial loss of fakes, differentiable with respect to them.
- `Penalty` and `scheduled_penalty`: WGAN-GP and R1 with a lazy `every=k` schedule.

A critic is a flax module applied as `apply(variables, examples, conditioning, train=..., mutable=...)`, where
`conditioning` is what it is conditioned on: None, class labels `[N]` (a projection critic) or a conditioning image
(pix2pix's critic sees the input beside the real or translated output). The optimiser update (`apply_gradients`)
and weight averages (`EMA`) serve every family, so they live in `trainers.common`. This module knows nothing of
configs, generators or latents.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from genjax import losses
from genjax.trainers import common

PENALTIES = ("none", "wgan_gp", "r1")


@dataclasses.dataclass(frozen=True)
class Penalty:
  """A penalty on the critic's input gradients, added to its loss.

  name:   none | wgan_gp (Gulrajani et al. 2017, on interpolates of real and fake) | r1 (Mescheder et al. 2018,
          gamma / 2 * ||grad||^2 on real examples).
  weight: WGAN-GP's lambda or R1's gamma.
  every:  k: lazy regularisation (Karras et al. 2020, StyleGAN2, section 3.1): the penalty is computed only on
          critic updates whose index k divides, with its weight multiplied by k so that its average pull is the
          same; the other updates skip its (double back-propagation) cost entirely. k = 1 computes it at every update.
  """

  name: str = "none"
  weight: float = 0.0
  every: int = 1


def penalty_value(name: str, critic: Callable[[jax.Array], jax.Array], real, fakes, key: jax.Array) -> jax.Array:
  """The unweighted penalty of `critic` (examples -> `[N]` logits, in inference mode), a float32 scalar."""
  if name == "wgan_gp":
    return losses.gradient_penalty(critic, real, fakes, key)
  if name == "r1":
    return 0.5 * losses.r1_penalty(critic, real)  # gamma / 2 * ||grad||^2, gamma = the penalty's weight.
  if name == "none":
    return jnp.zeros((), jnp.float32)
  raise ValueError(f"Unknown penalty {name!r}; expected one of {PENALTIES}.")


def scheduled_penalty(penalty: Penalty, update_index: jax.Array, critic, real, fakes, key: jax.Array):
  """`(term, value)`: the term to add to the critic's loss at critic update `update_index` (counted from 0) and the
  penalty's unweighted value, both 0 on updates that `penalty.every` skips."""
  if penalty.name == "none":
    zero = jnp.zeros((), jnp.float32)
    return zero, zero
  compute = lambda: penalty_value(penalty.name, critic, real, fakes, key)
  if penalty.every == 1:
    value = compute()
    return penalty.weight * value, value
  # lax.cond, not a multiplication by 0 or 1: only the branch taken runs, so skipped updates pay nothing for it.
  value = jax.lax.cond(update_index % penalty.every == 0, compute, lambda: jnp.zeros((), jnp.float32))
  return penalty.weight * penalty.every * value, value


@dataclasses.dataclass(frozen=True)
class CriticTraining:
  """How a critic is trained; closed over by a family's step.

  apply:       the critic's `Module.apply` (mixed precision included), as described in the module docstring.
  loss:        one of `losses.GAN_LOSSES`; the generator's adversarial loss uses the same.
  optimizer:   the critic's optimiser.
  penalty:     the penalty on its input gradients and its schedule.
  weight_clip: c > 0 clips every critic weight to [-c, c] after each update (the original WGAN); 0 does not.
  """

  apply: Callable[..., Any]
  loss: str
  optimizer: optax.GradientTransformation
  penalty: Penalty = Penalty()
  weight_clip: float = 0.0


def critic_update(
    training: CriticTraining,
    params,
    batch_stats,
    opt_state,
    *,
    real,
    fakes,
    conditioning,
    key: jax.Array,
    update_index: jax.Array,
):
  """One critic update: `(params, batch_stats, opt_state, metrics)` after descending the critic's loss on `real`
  and `fakes` (both seen with `conditioning`; no gradient flows into the fakes) plus its scheduled penalty.

  `key` draws the penalty's interpolates; `update_index` counts the critic's updates from 0 and drives the lazy
  schedule. The metrics are scalars: d_loss (without the penalty), penalty (unweighted, 0 where skipped), d_real
  and d_fake (mean logits), wasserstein_estimate (their difference), d_real_sign (the mean sign of the real logits,
  ADA's overfitting heuristic) and d_grad_norm.
  """
  fakes = jax.lax.stop_gradient(fakes)

  def loss_fn(params):
    real_logits, new_batch_stats = common.apply_training_mode(training.apply, params, batch_stats, real, conditioning)
    fake_logits, new_batch_stats = common.apply_training_mode(
        training.apply, params, new_batch_stats, fakes, conditioning
    )
    loss = jnp.mean(losses.discriminator_loss(training.loss, real_logits, fake_logits))
    variables = {"params": params, "batch_stats": batch_stats}
    critic = lambda examples: training.apply(variables, examples, conditioning, train=False)
    penalty_term, penalty = scheduled_penalty(training.penalty, update_index, critic, real, fakes, key)
    metrics = {
        "d_loss": loss,
        "penalty": penalty,
        "d_real": jnp.mean(real_logits),
        "d_real_sign": jnp.mean(jnp.sign(real_logits)),
        "d_fake": jnp.mean(fake_logits),
        "wasserstein_estimate": jnp.mean(real_logits) - jnp.mean(fake_logits),
    }
    return loss + penalty_term, (metrics, new_batch_stats)

  grads, (metrics, new_batch_stats) = jax.grad(loss_fn, has_aux=True)(params)
  metrics["d_grad_norm"] = optax.tree.norm(grads)
  params, opt_state = common.apply_gradients(params, opt_state, grads, training.optimizer)
  if training.weight_clip:
    params = jax.tree.map(lambda w: jnp.clip(w, -training.weight_clip, training.weight_clip), params)
  return params, new_batch_stats, opt_state, metrics


def generator_loss(training: CriticTraining, params, batch_stats, fakes, conditioning, real=None) -> jax.Array:
  """The adversarial loss of `fakes` under the critic (training mode, its batch statistics left as they were): the
  batch mean of `losses.generator_loss`, differentiable with respect to `fakes`. A relativistic loss also needs
  the `real` examples (seen with the same conditioning), whose logits it compares with."""
  fake_logits, batch_stats_after_fakes = common.apply_training_mode(
      training.apply, params, batch_stats, fakes, conditioning
  )
  real_logits = None
  if real is not None:
    real_logits, _ = common.apply_training_mode(training.apply, params, batch_stats_after_fakes, real, conditioning)
    real_logits = jax.lax.stop_gradient(real_logits)
  return jnp.mean(losses.generator_loss(training.loss, fake_logits, real_logits))
