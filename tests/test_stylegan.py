"""Specification of StyleGAN2 (genjax.models.stylegan, genjax.trainers.stylegan, genjax.augment, its sampling and
configs/stylegan2.py): the modulated convolution's closed forms, the noise inputs, the lazy regularisers' schedules,
the path-length mean, ADA's adaptive probability, DiffAugment, truncation, style mixing and the refusal of bad
settings. The networks of the unit tests are 8 pixels and a few channels wide, each compiled once; the trainer is
compiled once, by the tiny run that the integration tests share (`stylegan_run` in tiny_runs.py)."""

import json
import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from conftest import MNIST_SPEC, load_config, tiny_config
from genjax import augment
from genjax import errors
from genjax import experiment
from genjax import runs
from genjax import sampling
from genjax import tools
from genjax import train_loop
from genjax import trainers
from genjax import workdirs
from genjax import writers
from genjax.data import pipeline
from genjax.data import sources
from genjax.evaluators import offline
from genjax.models import stylegan
from genjax.trainers import adversarial
from genjax.trainers import common
from genjax.trainers import stylegan as stylegan_trainer

_NHWC = ("NHWC", "HWIO", "NHWC")


def _modulation_inputs(batch=3, size=6, c_in=4, c_out=5):
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (batch, size, size, c_in))
  weight = jax.random.normal(keys[1], (3, 3, c_in, c_out))
  styles = jax.random.normal(keys[2], (batch, c_in)) * 3.0
  return x, weight, styles


def test_demodulation_is_the_inverse_norm_of_each_examples_modulated_kernel_and_normalises_the_output_scale():
  x, weight, styles = _modulation_inputs(batch=2, size=48, c_in=8)

  @jax.jit
  def coefficients_and_scales():
    kernels = weight[None] * styles[:, None, None, :, None]
    expected = 1.0 / jnp.sqrt(jnp.sum(kernels**2, axis=(1, 2, 3)))
    # Mean squares of each output feature map away from the zero-padded border.
    mean_square = lambda y: jnp.mean(y[:, 1:-1, 1:-1] ** 2, axis=(1, 2))
    scales = [mean_square(stylegan.modulated_conv(x, weight, styles * scale)) for scale in (0.1, 10.0)]
    undemodulated = mean_square(stylegan.modulated_conv(x, weight, styles * 10.0, demodulate=False))
    return stylegan.demodulation(weight, styles), expected, scales, undemodulated

  coefficients, expected, scales, undemodulated = coefficients_and_scales()
  np.testing.assert_allclose(coefficients, expected, rtol=1e-5)
  # Unit-variance independent inputs give every output feature map unit variance, whatever the style's scale.
  for mean_square in scales:
    np.testing.assert_allclose(mean_square, 1.0, atol=0.15)
  assert float(jnp.min(undemodulated)) > 100.0


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_grouped_modulated_conv_equals_a_per_example_loop_and_the_batched_form(padding):
  x, weight, styles = _modulation_inputs()

  @jax.jit
  def grouped_looped_and_batched():
    looped = []
    for index in range(x.shape[0]):
      kernel = weight * styles[index][None, None, :, None]
      kernel = kernel / jnp.sqrt(jnp.sum(kernel**2, axis=(0, 1, 2)))
      looped.append(lax.conv_general_dilated(x[index : index + 1], kernel, (1, 1), padding, dimension_numbers=_NHWC))
    batched = stylegan.modulated_conv(x, weight, styles, fused=False, padding=padding)
    return stylegan.modulated_conv(x, weight, styles, fused=True, padding=padding), jnp.concatenate(looped), batched

  grouped, looped, batched = grouped_looped_and_batched()
  assert grouped.shape == (x.shape[0], *(2 * [x.shape[1] - (2 if padding == "VALID" else 0)]), weight.shape[-1])
  np.testing.assert_allclose(grouped, looped, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(grouped, batched, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_generator():
  generator = stylegan.Generator(8, 1, w_size=8, mapping_depth=2, channel_base=32, channel_max=8)
  latents = jax.random.normal(jax.random.key(1), (2, 8))
  return generator, latents, jax.jit(lambda key: generator.init(key, latents, None))(jax.random.key(2))


def test_noise_strength_zero_removes_the_noise_and_a_strength_adds_it(tiny_generator):
  generator, latents, variables = tiny_generator
  apply = jax.jit(lambda variables, key: generator.apply(variables, latents, None, key))
  first, second = apply(variables, jax.random.key(3)), apply(variables, jax.random.key(4))
  np.testing.assert_array_equal(first, second)  # Strengths start at 0.
  noisy = jax.tree_util.tree_map_with_path(
      lambda path, leaf: jnp.ones_like(leaf) if "noise_strength" in jax.tree_util.keystr(path) else leaf, variables
  )
  assert not np.allclose(apply(noisy, jax.random.key(3)), apply(noisy, jax.random.key(4)))


def test_generator_reads_one_w_per_layer_and_the_critic_one_logit_per_image(tiny_generator):
  generator, latents, variables = tiny_generator
  assert stylegan.num_ws(8) == 4 and stylegan.num_ws(32) == 8
  w = jax.jit(lambda: generator.apply(variables, latents, None, method=generator.map))()
  ws = jnp.repeat(w[:, None], stylegan.num_ws(8), axis=1)
  synthesize = jax.jit(lambda ws: generator.apply(variables, ws, method=generator.synthesize))
  images = synthesize(ws)
  assert images.shape == (2, 8, 8, 1)
  for index in range(4):  # Every one of the four ws is read.
    assert not np.allclose(images, synthesize(ws.at[:, index].set(-ws[:, index])))
  critic = stylegan.ResidualCritic(8, channel_base=32, channel_max=8, mbstd_group_size=2)

  @jax.jit
  def logits(images):
    return critic.apply(critic.init(jax.random.key(5), images, None, train=False), images, None, train=False)

  assert logits(images).shape == (2,)


def test_conditional_mapping_and_projection_critic_depend_on_the_label():
  latents, labels = jnp.zeros((2, 8)).at[:, 0].set(1.0), jnp.array([0, 1])
  critic = stylegan.ResidualCritic(8, channel_base=32, channel_max=8, num_classes=3, mbstd_group_size=2)
  images = jnp.zeros((2, 8, 8, 1))

  @jax.jit
  def w_and_logits():
    # The mapping alone: the synthesis network is not needed to see w depend on the label.
    mapping = stylegan.MappingNetwork(8, 1, 0.01, num_classes=3)
    w = mapping.apply(mapping.init(jax.random.key(0), latents, labels), latents, labels)
    critic_variables = critic.init(jax.random.key(1), images, labels, train=False)
    return w, critic.apply(critic_variables, images, labels, train=False)

  w, logits = w_and_logits()
  assert not np.allclose(w[0], w[1]) and not np.isclose(logits[0], logits[1])


def test_minibatch_stddev_is_the_mean_feature_deviation_of_each_examples_group():
  x = np.arange(4 * 2 * 2 * 3, dtype=np.float32).reshape(4, 2, 2, 3) ** 1.5
  y = jax.jit(stylegan.minibatch_stddev, static_argnums=1)(x, 2)
  for n in range(4):  # Groups {0, 2} and {1, 3}.
    group = x[[n % 2, n % 2 + 2]]
    np.testing.assert_allclose(y[n, ..., -1], np.mean(np.std(group, axis=0)), rtol=1e-4)
  np.testing.assert_array_equal(y[..., :3], x)


def test_fir_resampling_keeps_a_constant_image_constant_away_from_the_border():
  resample = lambda: (stylegan.upsample_2x(jnp.ones((1, 6, 6, 2))), stylegan.downsample_2x(jnp.ones((1, 8, 8, 2))))
  up, down = jax.jit(resample)()
  assert up.shape == (1, 12, 12, 2) and down.shape == (1, 4, 4, 2)
  np.testing.assert_allclose(up[:, 2:-2, 2:-2], 1.0, rtol=1e-6)
  np.testing.assert_allclose(down[:, 1:-1, 1:-1], 1.0, rtol=1e-6)


def test_fir_resampling_spreads_an_impulse_by_the_1_3_3_1_filter():
  impulse = jnp.zeros((1, 6, 6, 1)).at[0, 2, 3, 0].set(1.0)
  up, down = jax.jit(lambda x: (stylegan.upsample_2x(x), stylegan.downsample_2x(x)))(impulse)
  taps = np.array([1.0, 3.0, 3.0, 1.0])
  # Upsampled: the pixel's copy at (4, 6) of the 12x12 grid, filtered by [1, 3, 3, 1] / 4 on each axis (gain 4).
  expected_up = np.zeros((12, 12))
  expected_up[3:7, 5:9] = np.outer(taps, taps) / 16
  np.testing.assert_allclose(up[0, :, :, 0], expected_up, atol=1e-7)
  # Downsampled: output i averages inputs 2i - 1 ... 2i + 2 with weights [1, 3, 3, 1] / 8 on each axis.
  expected_down = np.zeros((3, 3))
  expected_down[0:2, 1:3] = np.outer([1.0, 3.0], [3.0, 1.0]) / 64
  np.testing.assert_allclose(down[0, :, :, 0], expected_down, atol=1e-7)


def test_an_upsampling_layers_border_sees_what_lies_beyond_it_as_a_transposed_convolution_would():
  """Its output equals that of the same image on a larger zero canvas, cut back to size: StyleGAN2's transposed
  convolution then filter gives that; zero-padding the upsampled image before the convolution would lose the part
  of the filtered image that spreads beyond the border."""
  keys = jax.random.split(jax.random.key(0), 3)
  x, w = jax.random.normal(keys[0], (2, 4, 4, 3)), jax.random.normal(keys[1], (2, 5))
  layer = stylegan.SynthesisLayer(4, up=True)
  variables = layer.init(keys[2], x, w, None, 0)
  apply = jax.jit(lambda x: layer.apply(variables, x, w, None, 0))
  on_canvas = apply(jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))))
  np.testing.assert_allclose(apply(x), on_canvas[:, 4:-4, 4:-4], atol=1e-5)


def test_lazy_r1_goes_through_the_kits_penalty_and_both_optimisers_get_the_lazy_correction():
  config = tiny_config(
      "stylegan2", stylegan__r1_gamma=0.5, stylegan__r1_every=16, stylegan__pl_weight=2.0, stylegan__pl_every=4
  )
  critic_training = stylegan_trainer.critic_training(config, stylegan.ResidualCritic(8))
  # The kit applies it on critic updates that 16 divides, with weight 0.5 * 16 (specified in test_adversarial.py).
  assert critic_training.penalty == adversarial.Penalty("r1", 0.5, 16)
  params, grads = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([0.3, 0.1])}
  for optimizer, every in [(critic_training.optimizer, 16), (stylegan_trainer.generator_optimizer(config), 4)]:
    ratio = every / (every + 1)
    expected = optax.adam(config.optim.lr * ratio, b1=0.0**ratio, b2=0.99**ratio)
    for _ in range(2):  # Two updates: the second depends on both betas.
      params_now, state = params, optimizer.init(params)
      expected_params, expected_state = params, expected.init(params)
      for _ in range(2):
        params_now, state = common.apply_gradients(params_now, state, grads, optimizer)
        expected_params, expected_state = common.apply_gradients(expected_params, expected_state, grads, expected)
    np.testing.assert_allclose(params_now["w"], expected_params["w"], rtol=1e-6)
  # A regulariser at every step is folded into the main update (StyleGAN2's eager regularisation): no correction.
  eager = tiny_config("stylegan2", stylegan__r1_every=1)
  optimizer = stylegan_trainer.critic_training(eager, stylegan.ResidualCritic(8)).optimizer
  plain = optax.adam(eager.optim.lr, b1=0.0, b2=0.99)
  eager_params, _ = common.apply_gradients(params, optimizer.init(params), grads, optimizer)
  plain_params, _ = common.apply_gradients(params, plain.init(params), grads, plain)
  np.testing.assert_allclose(eager_params["w"], plain_params["w"], rtol=1e-6)


def test_path_length_mean_moves_by_its_decay_towards_the_mean_length_before_the_penalty_uses_it():
  # A linear synthesis, images = ws . A: the gradient J^T y of <images, y> is A y for every layer's w.
  matrix = jax.random.normal(jax.random.key(0), (3, 2 * 2))
  synthesize = lambda ws: jnp.einsum("nlw,wp->np", ws, matrix).reshape(-1, 2, 2, 1)
  ws = jax.random.normal(jax.random.key(1), (5, 4, 3))
  key = jax.random.key(2)
  penalty, new_mean = jax.jit(stylegan_trainer.path_length_penalty, static_argnums=(0, 4))(
      synthesize, ws, key, jnp.asarray(0.5), 0.01
  )
  noise = jax.random.normal(key, (5, 2, 2, 1)) / 2.0  # y ~ N(0, I) / sqrt(H W)
  lengths = jnp.linalg.norm(noise.reshape(5, 4) @ matrix.T, axis=-1)  # Every layer's gradient is the same.
  np.testing.assert_allclose(new_mean, 0.5 + 0.01 * (jnp.mean(lengths) - 0.5), rtol=1e-5)
  np.testing.assert_allclose(penalty, jnp.mean((lengths - new_mean) ** 2), rtol=1e-5)


def test_ema_decay_follows_the_half_life_in_images_after_its_ramp_up():
  decay = lambda step: float(stylegan_trainer.ema_decay(jnp.asarray(step), 16, 1_000.0, 0.05))
  assert decay(0) == 0.0  # Nothing seen yet: the average is the weights.
  np.testing.assert_allclose(decay(100), 0.5 ** (16 / (100 * 16 * 0.05)), rtol=1e-6)  # Ramping: 80 images.
  np.testing.assert_allclose(decay(10_000), 0.5 ** (16 / 1_000), rtol=1e-6)


def test_style_mixing_takes_the_second_ws_from_a_crossover_layer_on():
  w, other = jnp.zeros((2, 3)), jnp.ones((2, 3))
  np.testing.assert_array_equal(stylegan_trainer.mix_styles(w, other, 6, 0.0, jax.random.key(0)), jnp.zeros((2, 6, 3)))
  crossovers = set()
  for seed in range(8):
    mixed = stylegan_trainer.mix_styles(w, other, 6, 1.0, jax.random.key(seed))
    layers = mixed[0, :, 0]
    crossover = int(jnp.argmax(layers))
    assert 1 <= crossover < 6 and bool(jnp.all(layers[crossover:] == 1)) and bool(jnp.all(layers[:crossover] == 0))
    crossovers.add(crossover)
  assert len(crossovers) > 1


@pytest.mark.parametrize("mean_sign, moves", [(1.0, 1), (0.2, -1), (-1.0, -1)])
def test_ada_probability_rises_when_the_critic_calls_reals_real_more_than_its_target_and_falls_otherwise(
    mean_sign, moves
):
  # r_t = E[sign D(real)] = 1: the critic is sure of every real image (overfitting); below the target, it is not.
  p = augment.ada_probability(jnp.asarray(0.5), jnp.asarray(mean_sign), 0.6, images_seen=64, speed_images=640.0)
  np.testing.assert_allclose(p, 0.5 + moves * 0.1, rtol=1e-6)
  assert float(augment.ada_probability(jnp.asarray(0.95), jnp.asarray(1.0), 0.6, 64, 640.0)) == 1.0  # Clipped.
  assert float(augment.ada_probability(jnp.asarray(0.05), jnp.asarray(-1.0), 0.6, 64, 640.0)) == 0.0


@pytest.fixture(scope="module")
def augmentation_batches():
  keys = jax.random.split(jax.random.key(0), 2)
  real = jax.random.uniform(keys[0], (6, 16, 16, 3), minval=-1.0, maxval=1.0)
  return real, jax.random.uniform(keys[1], (6, 16, 16, 3), minval=-1.0, maxval=1.0)


def test_diff_augment_is_differentiable_and_one_key_transforms_reals_and_fakes_alike(augmentation_batches):
  real, fakes = augmentation_batches
  geometric = ("translation", "cutout")

  @jax.jit
  def augmented_and_gradient(key):
    augmented = lambda images: augment.diff_augment(images, key, geometric)
    gradient = jax.grad(lambda images: jnp.sum(augmented(images) * real))(fakes)
    return augmented(real), augmented(fakes), augment.diff_augment(fakes, key), gradient

  real_out, fake_out, coloured, gradient = augmented_and_gradient(jax.random.key(1))
  # Translation and cutout move and blank pixels, the same for example i of both batches: the zeros coincide.
  np.testing.assert_array_equal(real_out == 0.0, fake_out == 0.0)
  assert 0.2 < float(jnp.mean(fake_out == 0.0)) < 0.6  # A quarter cut out, and a translated border.
  # The gradient of <augment(x), r> is the transposed transform of r: zero exactly where the output is blanked...
  assert np.isfinite(gradient).all() and float(jnp.mean(gradient == 0.0)) > 0.2
  np.testing.assert_allclose(jnp.sum(gradient * fakes), jnp.sum(fake_out * real), rtol=1e-4)  # ...and linear.
  assert not np.allclose(coloured, fake_out)  # The colour transforms are on by default.


def test_ada_at_p_zero_is_the_identity_and_at_p_one_transforms_every_image(augmentation_batches):
  real, _ = augmentation_batches
  ada = jax.jit(augment.ada)
  np.testing.assert_allclose(ada(real, jax.random.key(0), 0.0), real, atol=1e-6)
  changed = jnp.any(ada(real, jax.random.key(0), 1.0) != real, axis=(1, 2, 3))
  assert bool(jnp.all(changed))
  gradient = jax.grad(lambda images: jnp.sum(ada(images, jax.random.key(0), 1.0) ** 2))(real)
  assert np.isfinite(gradient).all() and float(jnp.max(jnp.abs(gradient))) > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model__resolution": 24}, "resolution=24 must be a power of two"),
        ({"model__resolution": 64}, "images are 28x28; config.model.resolution=64"),
        ({"stylegan__truncation": 1.5}, "truncation=1.5 must be in [0, 1]"),
        ({"stylegan__ada_target": 1.0}, "ada_target=1.0 must be in (0, 1)"),
        ({"stylegan__augment": "cutmix"}, "augment='cutmix' is not one of none, ada, diffaugment"),
        ({"data__pixel_range": (0.0, 1.0)}, "assume pixels in [-1, 1]"),
    ],
)
def test_bad_stylegan_settings_are_refused_before_compiling(overrides, message):
  with pytest.raises(errors.UserError, match=re.escape(message)):
    trainers.make_trainer(tiny_config("stylegan2", **overrides), MNIST_SPEC)


def test_the_configs_refuse_conflicting_data_arguments():
  with pytest.raises(errors.UserError, match="choose the data: one"):
    load_config("stylegan2", "runlocal,cifar10")
  with pytest.raises(errors.UserError, match="add folder=PATH"):
    load_config("stylegan2", "ffhq256")
  cifar10 = load_config("stylegan2", "cifar10")
  assert (cifar10.model.mapping_depth, cifar10.stylegan.pl_weight, cifar10.stylegan.style_mixing) == (2, 0.0, 0.0)
  assert (cifar10.stylegan.r1_gamma, cifar10.stylegan.augment, cifar10.stylegan.ada_target) == (0.01, "ada", 0.6)


def test_tiny_run_logs_its_lazy_schedules_and_ada_and_samples_truncates_and_mixes_styles(stylegan_run, tmp_path):
  with open(os.path.join(stylegan_run, "metrics.jsonl")) as f:
    train_lines = [line for line in map(json.loads, f) if line["split"] == "train"]
  assert [line["step"] for line in train_lines] == [1, 2, 3, 4]
  # R1 and path length on steps 0 and 2 (logged as 1 and 3); the path-length mean moves only then.
  assert [line["penalty"] > 0 for line in train_lines] == [True, False, True, False]
  assert [line["pl_penalty"] > 0 for line in train_lines] == [True, False, True, False]
  means = [line["pl_mean"] for line in train_lines]
  assert means[0] > 0 and means[1] == means[0] and means[2] != means[1] and means[3] == means[2]
  # p is adjusted after steps 1 and 3 (logged at 2 and 4), by 16 * 2 / 128 each time, up or down.
  assert [line["ada_p"] for line in train_lines][:1] == [0.0]
  assert train_lines[1]["ada_p"] in (0.0, 0.25) and train_lines[2]["ada_p"] == train_lines[1]["ada_p"]

  run = runs.load(stylegan_run, devices=jax.devices()[:1])
  # One compiled sampler serves every psi (4 images a batch, as the grid below).
  means_only = sampling.generate(run.experiment, run.state, 4, jax.random.key(0), 4, truncation=0.0)
  np.testing.assert_allclose(means_only, means_only[:1].repeat(4, axis=0), atol=1e-6)  # psi 0: the mean image.
  untruncated = sampling.generate(run.experiment, run.state, 4, jax.random.key(0), 4, truncation=1.0)
  assert not np.allclose(untruncated[0], untruncated[1])
  request = tools.SampleRequest(num_grid_images=4, num_interpolations=0, truncation=0.5, style_mixing_size=2)
  written = tools.write_samples(run, str(tmp_path), request)
  assert {os.path.basename(path) for path in written} == {
      "samples.png",
      "style_mixing_coarse.png",
      "style_mixing_middle.png",
      "style_mixing_fine.png",
  }
  with pytest.raises(errors.UserError, match="--truncation=1.2 must be in"):
    tools.write_samples(run, str(tmp_path), tools.SampleRequest(truncation=1.2))


def test_a_step_on_8_devices_equals_one_on_1_device(digits, devices):
  # R1 at every step and style mixing, as runlocal trains; 14x14 digits on a 16x16 canvas: one block less to
  # compile, twice, than the runlocal's 32x32.
  config = tiny_config("stylegan2", model__resolution=16)
  small = sources.in_memory(
      "small digits", [{**example, "image": example["image"][::2, ::2]} for example in digits.train], []
  )
  raw = pipeline.StreamReader(small.train, small.spec, pipeline.Stream(config.seed, 1, config.train.batch_size))(0)
  results = []
  for mesh_devices in (devices, devices[:1]):
    built = experiment.build(config, small.spec, mesh_devices)  # The production jit, donation included.
    state, metrics = built.train_step(built.init(), built.host_feed(raw), built.load_frozen(None))
    results.append(jax.device_get((state, metrics)))
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5), *results)


def test_resuming_the_tiny_run_from_step_2_reproduces_its_step_4_state(stylegan_run, tmp_path):
  """Steps 3 and 4 hold a lazy R1 and path-length update and an ADA adjustment: the path-length mean, p and the
  generator average resume with the weights."""
  resumed = str(tmp_path / "resumed")
  shutil.copytree(stylegan_run, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "4"))
  config = workdirs.read_config(resumed)
  config.evals = ()  # Training alone: evaluating changes no state.
  train_loop.run(config, resumed)
  straight, again = (runs.load(workdir, 4, devices=jax.devices()[:1]).state for workdir in (stylegan_run, resumed))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(again), jax.device_get(straight))


def test_w_interpolation_walks_the_straight_segment_between_the_endpoints_truncated_ws(stylegan_run, tiny_runs):
  run = runs.load(stylegan_run, devices=jax.devices()[:1])
  built, state, space = run.experiment, run.state, run.experiment.trainer.style_space
  start, end = np.asarray(jax.random.normal(jax.random.key(0), (2, 2, built.trainer.decoder.latent_size)))
  grid = sampling.interpolation_grid(built, state, start, end, 3, "w", truncation=0.5)

  w_mean = space.w_mean(state)
  first, last = (w_mean + 0.5 * (space.map(state, jnp.asarray(z), None) - w_mean) for z in (start, end))
  along = (first, (first + last) / 2, last)
  steps = [space.synthesize(state, jnp.repeat(w[:, None], space.num_layers, axis=1)) for w in along]
  expected = writers.image_grid(np.stack(steps, axis=1).reshape(-1, *steps[0].shape[1:]), (-1.0, 1.0), 3)
  assert grid.shape == expected.shape and np.abs(grid.astype(int) - expected).max() <= 1  # Rounding to 8 bits.
  with pytest.raises(errors.UserError, match="need a generator with a style space"):
    sampling.interpolation_grid(runs.load(tiny_runs["vae"]).experiment, None, start, end, 3, "w")


def test_tiny_run_is_scored_by_the_evaluators(stylegan_run, tiny_runs, tmp_path):
  run = runs.load(
      stylegan_run,
      overrides=[
          f"--config.eval.sample_quality.classifier_workdir={tiny_runs['classifier']}",
          "--config.eval.sample_quality.num_images=32",
          "--config.eval.batch_size=16",
      ],
      devices=jax.devices()[:1],
  )
  evaluation = offline.evaluate(run, 0, str(tmp_path))
  assert {"fid", "kid", "precision", "recall"} <= set(evaluation.metrics)
  assert all(np.isfinite(value) for value in evaluation.metrics.values())


def test_truncation_on_a_model_without_a_style_space_is_refused(tiny_runs, tmp_path):
  run = runs.load(tiny_runs["cgan"], devices=jax.devices()[:1])
  with pytest.raises(errors.UserError, match="need a generator with a style space"):
    tools.write_samples(run, str(tmp_path), tools.SampleRequest(truncation=0.5))
