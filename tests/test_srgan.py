"""Specification of super-resolution with perceptual and adversarial losses (SRGAN, ESRGAN; genjax/trainers/
restoration.py): the relativistic average loss on hand values, the published generators' shapes, a step that
trains generator and critic through a frozen VGG that stays out of the state, a run started from another's
generator (`config.init_from`), and the tiny runs of the fixture plugin evaluated beside bicubic upscaling."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config, train_batch
from genjax import errors
from genjax import experiment
from genjax import losses
from genjax import runs
from genjax import warm_start
from genjax.data import sources
from genjax.evaluators import offline
from genjax.models import restorers
from genjax.models import vgg
from genjax.trainers import restoration

PATCH = sources.ExampleSpec.images((16, 16, 1))


def test_the_relativistic_average_loss_compares_each_logit_with_the_other_sides_mean():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([0.0, 2.0])  # Means: real 2, fake 1.
  softplus = lambda x: float(jax.nn.softplus(x))
  expected_critic = [softplus(-(1.0 - 1.0)) + softplus(0.0 - 2.0), softplus(-(3.0 - 1.0)) + softplus(2.0 - 2.0)]
  np.testing.assert_allclose(losses.discriminator_loss("relativistic_average", real, fake), expected_critic, rtol=1e-6)
  # The generator's is the critic's with the sides swapped, and needs the real logits.
  expected_generator = [softplus(-(0.0 - 2.0)) + softplus(1.0 - 1.0), softplus(-(2.0 - 2.0)) + softplus(3.0 - 1.0)]
  np.testing.assert_allclose(losses.generator_loss("relativistic_average", fake, real), expected_generator, rtol=1e-6)
  with pytest.raises(ValueError, match="pass their logits"):
    losses.generator_loss("relativistic_average", fake)


@pytest.mark.parametrize(
    "generator, published_params",
    [(restorers.SRResNet(4), 1_549_462), (restorers.RRDBNet(4), 16_697_987)],
)
def test_the_published_generators_upscale_by_4_with_their_published_sizes(generator, published_params):
  low_resolution = jax.ShapeDtypeStruct((1, 24, 24, 3), jnp.float32)
  variables = jax.eval_shape(lambda: generator.init(jax.random.key(0), jnp.zeros(low_resolution.shape), train=False))
  assert sum(leaf.size for leaf in jax.tree.leaves(variables["params"])) == published_params
  output = jax.eval_shape(lambda v: generator.apply(v, jnp.zeros(low_resolution.shape), train=False), variables)
  assert output.shape == (1, 96, 96, 3)


def _tiny_config(**restoration_overrides):
  """configs/srgan.py:runlocal on 16x16 patches, a few channels wide, with VGG16's first block as the perceptual
  network (random weights: the step's arithmetic does not depend on them)."""
  config = load_config("srgan", "runlocal")
  config.data.patch_size = 16
  config.model.features, config.model.num_blocks, config.model.d_features = 4, 1, 2
  config.restoration.perceptual_weight = 1.0
  config.restoration.perceptual_network, config.restoration.perceptual_layer = 16, "relu1_2"
  config.restoration.update(restoration_overrides)
  return config


@pytest.fixture(scope="module")
def tiny_gan():
  config = _tiny_config()
  trainer = restoration.make_trainer(config, PATCH)
  random_vgg = vgg.VGG(16, ("relu1_2",)).init(jax.random.key(1), jnp.zeros((1, 16, 16, 3)))
  return config, trainer, jax.jit(trainer.train_step), {restoration.PERCEPTUAL_NETWORK: random_vgg}


def test_a_step_trains_the_generator_and_the_critic_on_pixel_perceptual_and_adversarial_losses(tiny_gan, digits):
  config, trainer, step, frozen = tiny_gan
  patches = {"image": jax.image.resize(train_batch(config, digits)["image"][:, :8], (1, 8, 16, 16, 1), "bilinear")}
  state = jax.jit(trainer.init)(jax.random.key(0))
  new_state, metrics = step(state, patches, jax.random.key(1), frozen)
  assert {"pixel_loss", "perceptual_loss", "adversarial_loss", "d_loss", "psnr"} <= set(metrics)
  assert all(np.isfinite(float(value)) for value in metrics.values())
  assert float(metrics["perceptual_loss"]) > 0.0
  expected = (
      config.restoration.pixel_weight * metrics["pixel_loss"]
      + config.restoration.perceptual_weight * metrics["perceptual_loss"]
      + config.restoration.adversarial_weight * metrics["adversarial_loss"]
  )
  np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
  for field in ("params", "d_params"):  # Both networks moved.
    before, after = jax.tree.leaves(getattr(state, field)), jax.tree.leaves(getattr(new_state, field))
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), field
  # The average starts at the weights and moves towards them with decay 0.999.
  first = lambda tree: np.asarray(jax.tree.leaves(tree)[0])
  np.testing.assert_allclose(
      first(new_state.ema_params), 0.999 * first(state.params) + 0.001 * first(new_state.params), rtol=1e-5, atol=1e-7
  )


def test_the_frozen_vgg_is_a_step_argument_not_state(digits):
  built = experiment.build(_tiny_config(), PATCH)
  state_paths = {"/".join(map(str, path)) for path in flax.traverse_util.flatten_dict(
      flax.serialization.to_state_dict(built.abstract_state)
  )}
  assert not any("conv1_1" in path for path in state_paths)
  assert set(built.frozen_networks) == {restoration.PERCEPTUAL_NETWORK}
  assert built.trainer.num_params(built.abstract_state) == sum(
      leaf.size for field in ("params", "d_params") for leaf in jax.tree.leaves(getattr(built.abstract_state, field))
  )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"perceptual_layer": "relu9_9"}, "perceptual_layer='relu9_9' is no layer of VGG16"),
        ({"perceptual_network": 11}, "perceptual_network=11 is not one of 16, 19"),
        ({"adversarial_loss": "ragan"}, "adversarial_loss='ragan' is not one of .*relativistic_average"),
        ({"adversarial_weight": -1.0}, "adversarial_weight=-1.0 must be >= 0"),
        ({"ema_decay": 1.0}, r"ema_decay=1.0 must be in \[0, 1\)"),
    ],
)
def test_impossible_perceptual_and_adversarial_settings_are_refused(overrides, message):
  with pytest.raises(errors.UserError, match=message):
    restoration.make_trainer(_tiny_config(**overrides), PATCH)


def test_the_adversarial_run_started_from_the_pixel_run_and_is_scored_beside_bicubic(srgan_runs, tmp_path):
  pixel_run, gan_run = runs.load(srgan_runs["pixels"]), runs.load(srgan_runs["adversarial"])
  # Started from the pixel run's generator: a fresh state of the GAN run's experiment, warm-started, holds its
  # weights exactly (the critic keeps its own initialisation).
  fresh = gan_run.experiment.init()
  started = warm_start.from_run(gan_run.experiment, fresh, srgan_runs["pixels"])
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(started.params), jax.device_get(pixel_run.state.params))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(started.ema_params), jax.device_get(pixel_run.state.params))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(started.d_params), jax.device_get(fresh.d_params))
  metrics = offline.evaluate(gan_run, 0, str(tmp_path)).metrics
  assert np.isfinite(metrics["psnr"]) and metrics["swd"] >= 0.0


def test_a_run_of_another_architecture_cannot_be_started_from(srgan_runs, restoration_runs):
  gan_run = runs.load(srgan_runs["adversarial"])
  with pytest.raises(errors.UserError, match="does not fit this run's"):
    warm_start.from_run(gan_run.experiment, gan_run.experiment.init(), restoration_runs["super_resolution"])
