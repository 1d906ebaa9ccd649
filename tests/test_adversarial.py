"""Specification of the adversarial kit (genjax.trainers.adversarial) and of the pieces it shares with every family
(trainers.common's apply_gradients and EMA): closed forms on hand-made parameters and a linear critic, the lazy
penalty schedule, and a critic trained on a translator's outputs rather than on samples from latents."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.trainers import adversarial
from genjax.trainers import common


class PairCritic(nn.Module):
  """A linear critic of an image beside the image it is conditioned on (pix2pix's arrangement)."""

  @nn.compact
  def __call__(self, examples, conditioning, train):
    del train  # Linear: the same in both modes.
    pairs = jnp.concatenate([examples, conditioning], axis=-1)
    return nn.Dense(1)(pairs.reshape(pairs.shape[0], -1)).squeeze(-1)


def _translation_batch():
  """Inputs, real outputs and a translator's outputs (fakes = G(inputs), no latents), `[4, 3, 3, 1]` each."""
  inputs = jax.random.uniform(jax.random.key(0), (4, 3, 3, 1), minval=-1.0, maxval=1.0)
  real = jax.random.uniform(jax.random.key(1), (4, 3, 3, 1), minval=-1.0, maxval=1.0)
  translate = lambda images: jnp.tanh(2.0 * images + 0.5)
  return inputs, real, translate(inputs)


def _pair_critic_training(penalty=adversarial.Penalty(), learning_rate=0.1):
  return adversarial.CriticTraining(PairCritic().apply, "wasserstein", optax.sgd(learning_rate), penalty)


def _init_pair_critic(inputs):
  return PairCritic().init(jax.random.key(2), inputs, inputs, train=False)["params"]


def _critic_update(training, params, real, fakes, conditioning, update_index):
  optimizer = training.optimizer
  return adversarial.critic_update(
      training,
      params,
      {},
      optimizer.init(params),
      real=real,
      fakes=fakes,
      conditioning=conditioning,
      key=jax.random.key(3),
      update_index=jnp.asarray(update_index),
  )


def test_critic_update_trains_a_conditional_critic_on_a_translators_outputs():
  inputs, real, fakes = _translation_batch()
  params = _init_pair_critic(inputs)
  new_params, _, _, metrics = _critic_update(_pair_critic_training(), params, real, fakes, inputs, 0)
  # Wasserstein loss of a linear critic f(y, x) = <w, [y, x]> + b: mean f(fake) - mean f(real), so the gradient on
  # w is the mean fake pair minus the mean real pair, and b's gradient is 0.
  flat_pairs = lambda outputs: jnp.concatenate([outputs, inputs], axis=-1).reshape(4, -1)
  kernel = params["Dense_0"]["kernel"]
  kernel_grad = jnp.mean(flat_pairs(fakes), axis=0) - jnp.mean(flat_pairs(real), axis=0)
  np.testing.assert_allclose(new_params["Dense_0"]["kernel"], kernel - 0.1 * kernel_grad[:, None], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new_params["Dense_0"]["bias"], params["Dense_0"]["bias"], atol=1e-7)
  real_logits = (flat_pairs(real) @ kernel).squeeze(-1) + params["Dense_0"]["bias"]
  fake_logits = (flat_pairs(fakes) @ kernel).squeeze(-1) + params["Dense_0"]["bias"]
  np.testing.assert_allclose(metrics["d_real"], jnp.mean(real_logits), rtol=1e-5)
  np.testing.assert_allclose(metrics["d_loss"], jnp.mean(fake_logits) - jnp.mean(real_logits), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(metrics["d_grad_norm"], jnp.linalg.norm(kernel_grad), rtol=1e-5)
  assert float(metrics["penalty"]) == 0.0


def test_critic_update_sees_the_conditioning():
  inputs, real, fakes = _translation_batch()
  params = _init_pair_critic(inputs)
  training = _pair_critic_training()
  _, _, _, metrics = _critic_update(training, params, real, fakes, inputs, 0)
  _, _, _, shifted = _critic_update(training, params, real, fakes, inputs + 1.0, 0)
  assert not np.isclose(metrics["d_real"], shifted["d_real"])


def test_generator_loss_differentiates_through_the_critic_into_the_fakes():
  inputs, _, fakes = _translation_batch()
  params = _init_pair_critic(inputs)
  # Wasserstein generator loss -mean f(fake, x): its gradient on each fake is -w (the fake's half of the kernel) / N.
  grads = jax.grad(lambda fakes: adversarial.generator_loss(_pair_critic_training(), params, {}, fakes, inputs))(fakes)
  fake_half_of_kernel = params["Dense_0"]["kernel"].reshape(3, 3, 2)[..., :1]
  np.testing.assert_allclose(grads, jnp.broadcast_to(-fake_half_of_kernel / 4, fakes.shape), rtol=1e-5)


def _linear_critic(weights):
  return lambda examples: examples.reshape(examples.shape[0], -1) @ weights


@pytest.mark.parametrize("every", [1, 4])
def test_lazy_penalty_is_applied_on_updates_that_every_divides_with_its_weight_times_every(every):
  weights = jnp.array([3.0, 4.0])  # R1 of a linear critic: gamma / 2 * ||w||^2 = gamma / 2 * 25 on every example.
  penalty = adversarial.Penalty("r1", weight=2.0, every=every)
  real = jnp.ones((5, 2))
  for update_index in range(9):
    term, value = adversarial.scheduled_penalty(
        penalty, jnp.asarray(update_index), _linear_critic(weights), real, real, jax.random.key(0)
    )
    if update_index % every == 0:
      np.testing.assert_allclose(value, 12.5, rtol=1e-6)
      np.testing.assert_allclose(term, 2.0 * every * 12.5, rtol=1e-6)
    else:
      assert float(value) == 0.0 and float(term) == 0.0


def test_lazy_penalty_skips_its_computation_through_a_conditional():
  penalty = adversarial.Penalty("r1", weight=1.0, every=16)
  jaxpr = jax.make_jaxpr(
      lambda index, real: adversarial.scheduled_penalty(
          penalty, index, _linear_critic(jnp.ones(2)), real, real, jax.random.key(0)
      )
  )(jnp.asarray(0), jnp.ones((5, 2)))
  assert "cond" in {equation.primitive.name for equation in jaxpr.jaxpr.eqns}


@pytest.mark.parametrize("name", ["wgan_gp", "r1"])
def test_a_lazy_critic_update_is_an_eager_one_with_k_times_the_weight_or_one_without_a_penalty(name):
  inputs, real, fakes = _translation_batch()
  params = _init_pair_critic(inputs)
  update = lambda penalty, index: _critic_update(_pair_critic_training(penalty), params, real, fakes, inputs, index)
  every = 3
  lazy = adversarial.Penalty(name, weight=0.5, every=every)
  for index, expected in [
      (6, update(adversarial.Penalty(name, weight=0.5 * every), index=6)),
      (7, update(adversarial.Penalty("none"), index=7)),
  ]:
    new_params, _, _, metrics = update(lazy, index)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), new_params, expected[0])
    assert (float(metrics["penalty"]) > 0) == (index % every == 0)



@pytest.mark.parametrize("name", ["wgan_gp", "r1"])
def test_a_penalty_every_update_is_the_eager_penalty_at_any_update(name):
  inputs, real, fakes = _translation_batch()
  params = _init_pair_critic(inputs)
  training = _pair_critic_training(adversarial.Penalty(name, weight=0.5, every=1))
  new_params, _, _, _ = _critic_update(training, params, real, fakes, inputs, 7)

  def eager_loss(params):
    critic = lambda examples: PairCritic().apply({"params": params}, examples, inputs, train=False)
    penalty = adversarial.penalty_value(name, critic, real, fakes, jax.random.key(3))
    return jnp.mean(critic(fakes)) - jnp.mean(critic(real)) + 0.5 * penalty

  expected = jax.tree.map(lambda w, g: w - 0.1 * g, params, jax.grad(eager_loss)(params))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), new_params, expected)


def test_apply_gradients_is_the_optimizers_update():
  params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
  grads = {"w": jnp.array([0.5, 0.25]), "b": jnp.array(-1.0)}
  sgd = optax.sgd(0.1)
  new_params, _ = common.apply_gradients(params, sgd.init(params), grads, sgd)
  jax.tree.map(np.testing.assert_allclose, new_params, {"w": jnp.array([0.95, -2.025]), "b": jnp.array(0.6)})
  # Adam's first step moves every weight by -lr * sign(grad) and counts the step in its state.
  adam = optax.adam(0.01)
  new_params, opt_state = common.apply_gradients(params, adam.init(params), grads, adam)
  expected = jax.tree.map(lambda w, g: w - 0.01 * jnp.sign(g), params, grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), new_params, expected)
  assert int(optax.tree_utils.tree_get(opt_state, "count")) == 1


def test_ema_by_decay_follows_its_closed_form_after_its_start_step_and_copies_the_weights_before():
  average, weights = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, -2.0])}
  ema = common.EMA(decay=0.9, start_step=5)
  np.testing.assert_allclose(ema.update(average, weights, jnp.asarray(5))["w"], [1.2, 1.6], rtol=1e-6)
  np.testing.assert_array_equal(ema.update(average, weights, jnp.asarray(4))["w"], weights["w"])


def test_ema_by_half_life_halves_the_distance_to_fixed_weights_every_half_life_in_images():
  ema = common.EMA.from_half_life(half_life_images=64, batch_size=16)
  np.testing.assert_allclose(ema.decay, 0.5 ** (16 / 64), rtol=1e-12)
  average, weights = {"w": jnp.array([0.0, 8.0])}, {"w": jnp.array([4.0, 4.0])}
  for step in range(64 // 16 * 2):  # Two half-lives: the distance falls to a quarter.
    average = ema.update(average, weights, jnp.asarray(step))
  np.testing.assert_allclose(average["w"], [3.0, 5.0], rtol=1e-5)


def test_a_one_network_state_carries_an_ema_only_when_asked():
  optimizer = optax.sgd(1.0)
  per_example_metrics = lambda params, batch, key, train: {"loss": batch["x"] * params["w"]}
  ema = common.EMA(decay=0.5)
  train_step, _ = common.steps_from_per_example_metrics(per_example_metrics, optimizer, ema)
  state = common.new_state({"w": jnp.array(2.0)}, optimizer, ema)
  state, _ = train_step(state, {"x": jnp.ones((1, 4))}, jax.random.key(0))
  np.testing.assert_allclose(state.params["w"], 1.0)  # Gradient of mean(x * w) is mean(x) = 1.
  np.testing.assert_allclose(state.ema_params["w"], 0.5 * 2.0 + 0.5 * 1.0)
  plain = common.new_state({"w": jnp.array(2.0)}, optimizer)
  assert not hasattr(plain, "ema_params") and len(jax.tree.leaves(plain)) == 2
