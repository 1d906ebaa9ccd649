"""Specification of the GAN trainer: critic/generator update counts, weight clipping, the generator's weight
average, the lazy penalty's schedule, sharding equivalence, end-to-end training and the refusal of impossible
settings. Its pieces (critic update, penalties, EMA) are specified in test_adversarial.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import MNIST_SPEC, tiny_config, train_batch, unlabelled
from genjax import config_lib
from genjax import errors
from genjax import experiment
from genjax import train_loop
from genjax import trainers
from genjax import writers
from genjax.data import pipeline
from genjax.data import sources
from genjax.data import toy2d
from genjax.models import gans


def _run_steps(config, data, num_steps):
  trainer = trainers.make_trainer(config, MNIST_SPEC)
  state = jax.jit(trainer.init)(jax.random.key(0))
  initial = state
  step = jax.jit(trainer.train_step)
  for index in range(num_steps):
    batch = train_batch(config, data, index, config.gan.n_critic)
    state, metrics = step(state, batch, jax.random.key(index))
  return initial, state, metrics


def _adam_count(opt_state) -> int:
  return int(optax.tree_utils.tree_get(opt_state, "count"))


def test_each_step_makes_n_critic_discriminator_updates_per_generator_update(digits):
  config = tiny_config("gan", gan__n_critic=3)
  _, state, _ = _run_steps(config, digits, num_steps=2)
  assert _adam_count(state.g_opt_state) == 2
  assert _adam_count(state.d_opt_state) == 6
  assert int(state.step) == 2


def test_weight_clipping_keeps_every_critic_weight_in_range(digits):
  config = tiny_config("wgan")
  initial, state, _ = _run_steps(config, digits, num_steps=1)
  clip = config.gan.weight_clip
  assert max(float(np.abs(w).max()) for w in jax.tree.leaves(initial.d_params)) > clip  # Clipping had work to do.
  assert max(float(np.abs(w).max()) for w in jax.tree.leaves(state.d_params)) <= clip


def test_generator_average_follows_its_decay(digits):
  config = tiny_config("gan", gan__ema_decay=0.9, gan__ema_start_step=0)
  initial, state, _ = _run_steps(config, digits, num_steps=1)
  expected = jax.tree.map(lambda ema, w: 0.9 * ema + 0.1 * w, initial.g_ema_params, state.g_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), state.g_ema_params, expected)


def test_generator_average_by_half_life_decays_by_half_per_half_life_in_images(digits):
  config = tiny_config("gan", gan__ema_half_life_images=64.0, gan__ema_start_step=0)  # Batches of 16 images.
  initial, state, _ = _run_steps(config, digits, num_steps=1)
  decay = 0.5 ** (16 / 64)
  expected = jax.tree.map(lambda ema, w: decay * ema + (1 - decay) * w, initial.g_ema_params, state.g_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), state.g_ema_params, expected)


def test_generator_average_equals_the_weights_before_its_start_step(digits):
  config = tiny_config("gan", gan__ema_decay=0.9, gan__ema_start_step=5)
  _, state, _ = _run_steps(config, digits, num_steps=2)
  jax.tree.map(np.testing.assert_array_equal, state.g_ema_params, state.g_params)


def test_a_lazy_penalty_is_computed_only_on_critic_updates_that_penalty_every_divides(digits):
  config = tiny_config("wgan_gp", gan__n_critic=2, gan__penalty_every=3)
  trainer = trainers.make_trainer(config, MNIST_SPEC)
  state, step = jax.jit(trainer.init)(jax.random.key(0)), jax.jit(trainer.train_step)
  penalties = []  # The mean over each step's two critic updates: updates 0-1, 2-3, 4-5, 6-7.
  for index in range(4):
    state, metrics = step(state, train_batch(config, digits, index, 2), jax.random.key(index))
    penalties.append(float(metrics["penalty"]))
  assert [penalty > 0 for penalty in penalties] == [True, True, False, True]  # Updates 0, 3 and 6.


@pytest.mark.parametrize("name", ["gan", "wgan_gp"])
def test_gan_step_on_8_devices_equals_step_on_1_device(name, digits, devices):
  config = tiny_config(name)
  raw = pipeline.StreamReader(digits.train, digits.spec, pipeline.Stream(config.seed, config.gan.n_critic, config.train.batch_size))(
      0
  )
  results = []
  for mesh_devices in (devices, devices[:1]):
    built = experiment.build(config, digits.spec, mesh_devices)  # The production jit, donation included.
    state, metrics = built.train_step(built.init(), built.host_feed(raw), built.load_frozen(None))
    results.append(jax.device_get((state.g_params, state.d_params, metrics)))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), results[0], results[1])


# The WGAN variants end to end are slow; their steps are covered by the default run's step and equality tests.
@pytest.mark.parametrize(
    "name", ["gan", pytest.param("wgan", marks=pytest.mark.slow), pytest.param("wgan_gp", marks=pytest.mark.slow)]
)
def test_gan_configs_train_end_to_end_and_write_sample_grids(name, digits, tmp_path):
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(tiny_config(name), str(tmp_path), digits, writer)
  train_lines = [m for m in writer.metrics if m["split"] == "train"]
  assert {"loss", "d_loss", "g_loss", "penalty", "d_real", "d_fake", "wasserstein_estimate"} <= set(train_lines[-1])
  assert all(np.isfinite(value) for line in writer.metrics for key, value in line.items() if key != "split")
  assert {name for _, name, _ in writer.images} == {"samples"}
  assert [m["step"] for m in writer.metrics if m["split"] == "eval"] == [4]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"gan__loss": "wgan"}, "gan.loss='wgan' is not one of non_saturating, minimax, hinge, least_squares"),
        ({"gan__penalty": "gp"}, "gan.penalty='gp' is not one of none, wgan_gp, r1"),
        ({"gan__penalty": "wgan_gp"}, "needs a critic without batch normalisation"),
        ({"gan__n_critic": 0}, "n_critic=0 must be at least 1"),
        ({"gan__penalty_every": 0}, "penalty_every=0 must be at least 1"),
        ({"gan__ema_half_life_images": -1.0}, "ema_half_life_images must be >= 0"),
        ({"model__architecture": "stylegan"}, "architecture='stylegan' is not one of dcgan, resnet, mlp"),
        ({"model__d_normalization": "group"}, "d_normalization='group' is not one of batch, layer, none"),
    ],
)
def test_impossible_gan_settings_are_refused_before_compiling(overrides, message):
  with pytest.raises(errors.UserError, match=message):
    trainers.make_trainer(tiny_config("gan", **overrides), MNIST_SPEC)


def test_conditional_gan_trains_and_draws_one_row_per_class(digits, tmp_path):
  writer = writers.MemoryWriter()
  config = tiny_config("gan", model__num_classes=10, eval__grids__num_images=20)
  train_loop.train_and_evaluate(config, str(tmp_path), digits, writer)
  ((_, _, grid),) = [image for image in writer.images if image[1] == "samples"]
  assert grid.shape[:2] == (10 * 29 + 1, 2 * 29 + 1)  # 10 rows (classes) of 2 samples, one-pixel gaps.


def test_conditional_networks_depend_on_the_label():
  generator = gans.DCGANGenerator(7, (8, 4), 1, num_classes=10)
  discriminator = gans.DCGANDiscriminator((4, 8), "layer", num_classes=10)
  latents = jax.random.normal(jax.random.key(0), (2, 4))
  labels_a, labels_b = jnp.array([0, 0]), jnp.array([3, 7])
  g_variables = generator.init(jax.random.key(1), latents, labels_a, train=False)
  images_a = generator.apply(g_variables, latents, labels_a, train=False)
  assert not np.allclose(images_a, generator.apply(g_variables, latents, labels_b, train=False))
  d_variables = discriminator.init(jax.random.key(2), images_a, labels_a, train=False)
  logits_a = discriminator.apply(d_variables, images_a, labels_a, train=False)
  assert not np.allclose(logits_a, discriminator.apply(d_variables, images_a, labels_b, train=False))


def test_conditional_model_on_unlabelled_data_is_refused(digits, tmp_path):
  with pytest.raises(errors.UserError, match="class-conditional, but dataset 'mnist5k' has no labels"):
    train_loop.train_and_evaluate(
        tiny_config("gan", model__num_classes=10), str(tmp_path), unlabelled(digits), writers.MemoryWriter()
    )


@pytest.mark.parametrize("dataset", ["ring", "grid"])
def test_toy2d_config_trains_and_scores_mode_coverage(dataset, tmp_path):
  config = tiny_config("toy2d", f"dataset={dataset}")
  data = sources.open_source(config.data)
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(config, str(tmp_path), data, writer)
  (eval_line,) = [m for m in writer.metrics if m["split"] == "eval"]
  assert 0 <= eval_line["modes_covered"] <= len(toy2d.MIXTURES[dataset].centers)
  assert 0.0 <= eval_line["high_quality_fraction"] <= 1.0
  ((_, name, plot),) = writer.images
  assert name == "samples" and plot.dtype == np.uint8 and plot.shape[-1] == 3


def test_resnet_wgan_gp_for_cifar10_trains_a_step_on_32x32_colour_images():
  config = tiny_config("wgan_gp", "cifar10", gan__n_critic=2)
  trainer = trainers.make_trainer(config, sources.ExampleSpec.images((32, 32, 3), num_classes=10))
  state = jax.jit(trainer.init)(jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (2, 16, 32, 32, 3), minval=-1.0, maxval=1.0)
  state, metrics = jax.jit(trainer.train_step)(state, {"image": images}, jax.random.key(2))
  assert int(state.step) == 1 and np.isfinite(float(metrics["penalty"])) and float(metrics["penalty"]) > 0


def test_spectral_norm_critic_updates_its_power_iteration_state_each_critic_update(digits):
  config = tiny_config("gan", model__d_spectral_norm=True)
  initial, state, _ = _run_steps(config, digits, num_steps=1)
  u_vectors = lambda d_batch_stats: [leaf for path, leaf in _flatten_with_names(d_batch_stats) if path.endswith("/u")]
  assert len(u_vectors(state.d_batch_stats)) == 3  # Two convolutions and the output layer.
  for before, after in zip(u_vectors(initial.d_batch_stats), u_vectors(state.d_batch_stats)):
    assert not np.allclose(before, after)


def _flatten_with_names(tree):
  return [("/".join(str(getattr(k, "key", k)) for k in path), leaf) for path, leaf in jax.tree.leaves_with_path(tree)]


def test_a_config_saved_before_lazy_penalties_and_half_lives_reads_back_with_the_eager_penalty_and_its_decay():
  saved = tiny_config("wgan_gp").to_dict()
  del saved["gan"]["penalty_every"], saved["gan"]["ema_half_life_images"]
  config = config_lib.with_added_keys(config_lib.from_json(saved))
  assert (config.gan.penalty_every, config.gan.ema_half_life_images) == (1, 0.0)
  trainers.make_trainer(config, MNIST_SPEC)


def test_image_architectures_refuse_point_data():
  with pytest.raises(errors.UserError, match="makes images; for 2-D points use 'mlp'"):
    trainers.make_trainer(tiny_config("gan"), sources.ExampleSpec.points(2, num_classes=8))
