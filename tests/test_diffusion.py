"""Specification of the diffusion family: the DDPM U-Net (`models.unets`), the forward process, its samplers and
its bound (`gaussian_diffusion`), and the trainer (`trainers.diffusion`).

The process is checked against closed forms: data from a 1-D mixture of Gaussians, whose noise predictor
E[noise | x_t] is known exactly, stand in for a trained network."""

import dataclasses
import functools
import math
import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from conftest import MNIST_SPEC, load_config, tiny_config
from genjax import config_lib
from genjax import errors
from genjax import evaluators
from genjax import experiment
from genjax import gaussian_diffusion
from genjax import runs
from genjax import train_loop
from genjax import trainers
from genjax import workdirs
from genjax.data import pipeline
from genjax.data import sources
from genjax.models import unets


def test_cifar10_config_builds_the_35_7m_parameter_unet_of_ho_et_al():
  config = load_config("ddpm", "cifar10")
  trainer = trainers.make_trainer(config, sources.ExampleSpec.images((32, 32, 3)))
  abstract_state = jax.eval_shape(trainer.init, jax.random.key(0))  # Shapes alone: nothing is initialised.
  assert round(trainer.num_params(abstract_state) / 1e6, 1) == 35.7


def test_timestep_embedding_is_sines_then_cosines_of_geometric_frequencies():
  embedding = unets.timestep_embedding(jnp.array([0, 3]), 6)
  frequencies = 10_000.0 ** -(np.arange(3) / 2)
  np.testing.assert_allclose(embedding[0], [0, 0, 0, 1, 1, 1])
  expected = np.concatenate([np.sin(3 * frequencies), np.cos(3 * frequencies)])
  np.testing.assert_allclose(embedding[1], expected, rtol=1e-5)


def test_group_norm_has_the_references_32_groups_and_at_least_4_channels_in_each_so_feature_means_survive():
  assert [unets.group_norm(channels).num_groups for channels in (256, 128, 64, 16, 8, 2)] == [32, 32, 16, 4, 2, 1]
  # Feature maps offset by different constants: within a group of several channels the offsets survive
  # normalisation; a group of one channel (instance norm) would erase each map's mean.
  offsets = 3.0 * jnp.arange(16.0)
  maps = jax.random.normal(jax.random.key(0), (1, 8, 8, 16)) + offsets
  norm = unets.group_norm(16)
  normalised = norm.apply(norm.init(jax.random.key(1), maps), maps)
  means = normalised.mean(axis=(0, 1, 2)).reshape(4, 4)
  assert np.all(np.diff(means, axis=1) > 0.5)


# The forward process.


def test_linear_schedule_is_ho_et_al_at_1000_steps_and_the_cosine_follows_its_formula():
  np.testing.assert_allclose(gaussian_diffusion.linear_betas(1000)[[0, -1]], [1e-4, 0.02])
  cosine = gaussian_diffusion.make_process("cosine", 10).alphas_cumprod
  f = lambda t: math.cos((t / 10 + 0.008) / 1.008 * math.pi / 2) ** 2
  np.testing.assert_allclose(cosine[:9], [f(t) / f(0) for t in range(1, 10)], rtol=1e-5)
  np.testing.assert_allclose(cosine[9], cosine[8] * 0.001, rtol=1e-5)  # The last beta (1) capped at 0.999.


def test_forward_process_moments_on_a_hand_case():
  process = gaussian_diffusion.make_process("linear", 4)
  betas = np.linspace(0.025, 5.0, 4).clip(max=0.999)  # 1e-4 and 0.02 scaled by 1000 / 4, capped.
  np.testing.assert_allclose(process.betas, betas, rtol=1e-6)

  @jax.jit
  def moments_and_draws():
    moments = gaussian_diffusion.q_mean_variance(process, jnp.full((2, 1), 0.5), jnp.array([0, 1]))
    noise = jax.random.normal(jax.random.key(0), (20_000, 1))
    return moments, gaussian_diffusion.q_sample(process, jnp.full_like(noise, 0.5), jnp.zeros(20_000, jnp.int32), noise)

  (mean, variance), draws = moments_and_draws()
  alpha_bar = np.array([1 - betas[0], (1 - betas[0]) * (1 - betas[1])])
  np.testing.assert_allclose(mean[:, 0], 0.5 * np.sqrt(alpha_bar), rtol=1e-6)
  np.testing.assert_allclose(variance[:, 0], 1 - alpha_bar, rtol=1e-6)
  # q_sample draws from those moments.
  np.testing.assert_allclose([draws.mean(), draws.var()], [mean[0, 0], variance[0, 0]], rtol=0.03)


def test_posterior_is_bayes_rule_on_one_step_and_the_marginal():
  process = gaussian_diffusion.make_process("linear", 4)
  x0, x_t, t = jnp.array([[0.3]]), jnp.array([[-0.2]]), jnp.array([2])
  mean, log_variance = gaussian_diffusion.q_posterior(process, x0, x_t, t)
  # q(x_1 | x_0) = N(sqrt(ab_1) x0, 1 - ab_1) times q(x_2 | x_1) = N(sqrt(1 - b_2) x_1, b_2), as a density of x_1.
  beta, previous_alpha_bar = float(process.betas[2]), float(process.alphas_cumprod[1])
  precision = 1 / (1 - previous_alpha_bar) + (1 - beta) / beta
  expected_mean = math.sqrt(previous_alpha_bar) * 0.3 / (1 - previous_alpha_bar) + math.sqrt(1 - beta) * -0.2 / beta
  np.testing.assert_allclose(mean[0, 0], expected_mean / precision, atol=1e-6)
  np.testing.assert_allclose(np.exp(log_variance[0, 0]), 1 / precision, rtol=1e-5)


@pytest.mark.parametrize("prediction", gaussian_diffusion.PREDICTIONS)
def test_each_prediction_type_of_the_true_target_gives_back_x0_and_the_noise(prediction):
  process = gaussian_diffusion.make_process("cosine", 10, prediction)
  x0, noise = jax.random.normal(jax.random.key(0), (2, 2, 3, 3, 2))
  t = jnp.array([0, 9])
  x_t = gaussian_diffusion.q_sample(process, x0, t, noise)
  target = gaussian_diffusion.training_target(process, x0, noise, t)
  recovered_x0, recovered_noise = gaussian_diffusion.x0_and_epsilon(process, target, x_t, t)
  np.testing.assert_allclose(recovered_x0, x0, atol=2e-4)
  np.testing.assert_allclose(recovered_noise, noise, atol=2e-4)
  assert np.all(gaussian_diffusion.simple_loss(process, target, x0, noise, t) < 1e-12)


# A 1-D mixture of Gaussians 0.5 N(-0.5, 0.2^2) + 0.5 N(0.5, 0.2^2): q(x_t) is a mixture too, so E[noise | x_t] is
# known in closed form (the best noise predictor there is).
MODES, SPREAD = np.array([-0.5, 0.5]), 0.2
TOY_PROCESS = gaussian_diffusion.make_process("linear", 200, "epsilon", "fixed_small")


def true_noise_predictor(process, modes=MODES, spread=SPREAD):
  def predict(x_t, t):
    alpha_bar = jnp.asarray(process.alphas_cumprod)[t].reshape(-1, *([1] * (x_t.ndim - 1)), 1)
    variance = alpha_bar * spread**2 + 1 - alpha_bar
    offsets = x_t[..., None] - jnp.sqrt(alpha_bar) * modes
    responsibilities = jax.nn.softmax(-0.5 * offsets**2 / variance, axis=-1)
    return jnp.sum(responsibilities * jnp.sqrt(1 - alpha_bar) * offsets / variance, axis=-1)

  return predict


def test_the_true_noise_predictor_scores_the_noise_floor():
  # For one Gaussian N(m, s^2) the floor is Var(noise | x_t) = ab s^2 / (ab s^2 + 1 - ab); a point mass's is 0.
  process = gaussian_diffusion.make_process("linear", 10)

  @jax.jit
  def losses_at_step_4():
    """The mean losses of the true predictor, of one 10% off, and of the true predictor of a point mass at 0.3."""
    t = jnp.full((50_000,), 4)
    x0 = 0.3 + 0.2 * jax.random.normal(jax.random.key(0), (50_000, 1))
    noise = jax.random.normal(jax.random.key(1), (50_000, 1))
    x_t = gaussian_diffusion.q_sample(process, x0, t, noise)
    prediction = true_noise_predictor(process, np.array([0.3]), 0.2)(x_t, t)
    point_mass = jnp.full_like(x0, 0.3)
    point_mass_x_t = gaussian_diffusion.q_sample(process, point_mass, t, noise)
    exact = true_noise_predictor(process, np.array([0.3]), 0.0)(point_mass_x_t, t)
    return [
        gaussian_diffusion.simple_loss(process, prediction, x0, noise, t).mean(),
        gaussian_diffusion.simple_loss(process, 1.1 * prediction, x0, noise, t).mean(),
        gaussian_diffusion.simple_loss(process, exact, point_mass, noise, t).mean(),
    ]

  loss, worse, point_mass_loss = map(float, losses_at_step_4())
  alpha_bar = float(process.alphas_cumprod[4])
  floor = alpha_bar * 0.04 / (alpha_bar * 0.04 + 1 - alpha_bar)
  assert abs(loss - floor) < 0.01 * floor
  assert worse > loss
  assert point_mass_loss < 1e-8


@pytest.fixture(scope="module")
def toy_samples():
  """4,000 draws each of ancestral sampling, DDIM with eta = 0 and DDIM with eta = 1, all with T = 200 steps from the
  same x_T and keys, with the true noise predictor of the mixture: one compilation."""
  predictor = true_noise_predictor(TOY_PROCESS)

  def sample(x_T, key):
    return (
        gaussian_diffusion.ddpm_sample(TOY_PROCESS, predictor, x_T, key, clip=False),
        gaussian_diffusion.ddim_sample(TOY_PROCESS, predictor, x_T, 200, 0.0, clip=False),
        gaussian_diffusion.ddim_sample(TOY_PROCESS, predictor, x_T, 200, 1.0, key, clip=False),
    )

  x_T = jax.random.normal(jax.random.key(0), (4000, 1))
  return [np.ravel(samples) for samples in jax.jit(sample)(x_T, jax.random.key(1))]


def test_ancestral_and_ddim_sampling_with_t_steps_agree_in_distribution_on_a_1d_mixture(toy_samples):
  ancestral, ddim, _ = toy_samples
  assert scipy.stats.ks_2samp(ancestral, ddim).pvalue > 0.01
  for samples in (ancestral, ddim):  # Both are the mixture: half each side, at +-0.5, spread 0.2.
    assert abs(np.mean(samples > 0) - 0.5) < 0.03
    assert abs(np.mean(np.abs(samples)) - 0.5) < 0.03
    assert abs(np.std(np.abs(samples)) - SPREAD) < 0.03


def test_ddim_with_eta_1_and_t_steps_is_ancestral_sampling_with_the_posterior_variance(toy_samples):
  ancestral, _, ddim_eta_1 = toy_samples
  np.testing.assert_allclose(ddim_eta_1, ancestral, atol=1e-3)


def test_ddim_with_eta_0_is_deterministic_and_its_inversion_round_trips():
  predictor = true_noise_predictor(TOY_PROCESS)
  images = MODES[1] + SPREAD * jax.random.normal(jax.random.key(2), (2, 4, 4, 1))

  def round_trip(images, key):
    x_T = gaussian_diffusion.ddim_invert(TOY_PROCESS, predictor, images, 200)
    sample = lambda key: gaussian_diffusion.ddim_sample(TOY_PROCESS, predictor, x_T, 200, 0.0, key, clip=False)
    return sample(key), sample(jax.random.fold_in(key, 1))

  first, second = jax.jit(round_trip)(images, jax.random.key(3))
  np.testing.assert_array_equal(first, second)
  np.testing.assert_allclose(first, images, atol=0.03)


def test_ddim_visits_any_number_of_steps_up_to_t_including_both_ends():
  np.testing.assert_array_equal(gaussian_diffusion.ddim_timesteps(10, 10), np.arange(10))
  np.testing.assert_array_equal(gaussian_diffusion.ddim_timesteps(10, 4), [0, 3, 6, 9])
  np.testing.assert_array_equal(gaussian_diffusion.ddim_timesteps(1000, 1), [0])
  with pytest.raises(ValueError):
    gaussian_diffusion.ddim_timesteps(10, 11)


def test_guidance_scale_0_is_the_conditional_prediction_and_minus_1_the_unconditional():
  process = gaussian_diffusion.make_process("linear", 10)
  guided = functools.partial(gaussian_diffusion.guided, process)
  conditional, unconditional = jnp.array([1.0, 2.0]), jnp.array([0.5, -1.0])
  np.testing.assert_array_equal(guided(conditional, unconditional, 0.0), conditional)
  np.testing.assert_array_equal(guided(conditional, unconditional, -1.0), unconditional)
  np.testing.assert_allclose(guided(conditional, unconditional, 2.0), [2.0, 8.0])


def test_guidance_of_a_learned_variance_model_guides_its_prediction_and_keeps_the_conditional_variance():
  process = gaussian_diffusion.make_process("linear", 10, variance="learned_range")
  # One pixel, one channel: [prediction, variance interpolation] on the last axis.
  conditional, unconditional = jnp.array([[1.0, 0.3]]), jnp.array([[0.5, -0.9]])
  np.testing.assert_allclose(gaussian_diffusion.guided(process, conditional, unconditional, 2.0), [[2.0, 0.3]])


def test_learned_variances_interpolate_in_log_space_between_the_posteriors_and_beta():
  process = gaussian_diffusion.make_process("linear", 10, variance="learned_range")
  assert gaussian_diffusion.output_channels(process, 3) == 6
  t = jnp.array([3, 3, 3])
  prediction = jnp.array([[0.1], [0.2], [0.3]])
  interpolation = jnp.array([[-1.0], [1.0], [0.0]])
  read, log_variance = gaussian_diffusion.prediction_and_log_variance(
      process, jnp.concatenate([prediction, interpolation], axis=-1), t
  )
  np.testing.assert_array_equal(read, prediction)
  betas = gaussian_diffusion.linear_betas(10)
  alpha_bar = np.cumprod(1 - betas)
  posterior = betas[3] * (1 - alpha_bar[2]) / (1 - alpha_bar[3])
  np.testing.assert_allclose(
      np.exp(log_variance[:, 0]), [posterior, betas[3], np.sqrt(posterior * betas[3])], rtol=1e-5
  )


def test_the_hybrid_loss_trains_the_prediction_by_the_simple_loss_and_the_variances_by_the_bound():
  process = gaussian_diffusion.make_process("linear", 50, variance="learned_range")
  keys = jax.random.split(jax.random.key(0), 4)
  x0 = jax.random.uniform(keys[0], (4, 3, 3, 2), minval=-1, maxval=1)
  noise = jax.random.normal(keys[1], x0.shape)
  t = jnp.array([0, 1, 20, 49])
  x_t = gaussian_diffusion.q_sample(process, x0, t, noise)
  output = jax.random.normal(keys[2], (4, 3, 3, 4))  # Prediction, then variance interpolation.
  weight = 0.25
  hybrid = lambda output: jnp.sum(gaussian_diffusion.hybrid_loss(process, output, x0, x_t, noise, t, weight))
  simple = lambda prediction: jnp.sum(gaussian_diffusion.simple_loss(process, prediction, x0, noise, t))
  bound_bits_per_dim = lambda output: jnp.sum(
      gaussian_diffusion.bound_term(process, lambda x_t, t: output, x0, x_t, t) / (18 * math.log(2))
  )
  np.testing.assert_allclose(
      hybrid(output), simple(output[..., :2]) + weight * 50 * bound_bits_per_dim(output), rtol=1e-6
  )
  gradient = jax.grad(hybrid)(output)
  np.testing.assert_allclose(gradient[..., :2], jax.grad(simple)(output[..., :2]), rtol=1e-6)
  variance_gradient = weight * 50 * jax.grad(bound_bits_per_dim)(output)[..., 2:]
  np.testing.assert_allclose(gradient[..., 2:], variance_gradient, atol=1e-5 * np.abs(variance_gradient).max())
  assert np.all(np.abs(jax.grad(bound_bits_per_dim)(output)[..., :2]) > 0)  # Stopped, not absent from the bound.


@pytest.mark.parametrize(
    "variance, interpolation",
    [("fixed_large", None), ("fixed_small", None), ("learned_range", -1.0), ("learned_range", 1.0)],
)
def test_variational_bound_of_a_perfect_model_of_one_image_is_its_prior_and_decoder_terms(variance, interpolation):
  """The data: one 2x2 image (with both edge levels); the model predicts that image from any x_t, so its reverse
  means are the posterior's and each KL term is that of the variances alone (0 for fixed_small and for learned
  variances at the posterior's, v = -1)."""
  process = gaussian_diffusion.make_process("linear", 10, "x0", variance)
  pixels = np.array([0, 1, 128, 255], np.float64)
  image = jnp.asarray((pixels / 127.5 - 1).reshape(1, 2, 2, 1), jnp.float32)
  output = image if interpolation is None else jnp.concatenate([image, jnp.full_like(image, interpolation)], -1)
  perfect_model = lambda x_t, t: jnp.broadcast_to(output, (*x_t.shape[:-1], output.shape[-1]))
  bound = jax.jit(functools.partial(gaussian_diffusion.variational_bound, process, perfect_model))(
      image, jax.random.key(0)
  )
  betas = gaussian_diffusion.linear_betas(10)
  alpha_bar = np.cumprod(1 - betas)
  small = betas[1:] * (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:])  # beta-tilde of t = 1..T-1.
  x = pixels / 127.5 - 1
  prior = np.sum(0.5 * (alpha_bar[-1] * x**2 + (1 - alpha_bar[-1]) - 1 - np.log(1 - alpha_bar[-1])))
  # At t = 0 the reverse mean is the image itself; fixed variances take beta-tilde_1 there, learned ones between it
  # and beta_0.
  decoder_variance = betas[0] if interpolation == 1.0 else small[0]
  decoder = scipy.stats.norm(x, np.sqrt(decoder_variance))
  mass = np.where(x > 0.999, 1.0, decoder.cdf(x + 1 / 255)) - np.where(x < -0.999, 0.0, decoder.cdf(x - 1 / 255))
  reverse = small if variance == "fixed_small" or interpolation == -1.0 else betas[1:]
  kl_terms = 4 * np.sum(0.5 * (np.log(reverse / small) + small / reverse - 1))
  np.testing.assert_allclose(bound, [prior - np.sum(np.log(mass)) + kl_terms], rtol=1e-4)


# The trainer.


def _load(workdir, *overrides, step=None):
  return runs.load(workdir, step, overrides, devices=jax.devices()[:1])


@pytest.fixture(scope="module")
def ddpm_run(diffusion_runs, tiny_runs):
  """The tiny run, loaded to be scored in the tiny classifier's feature space, with samples and reconstructions
  drawn in batches of 8 as the run's grids drew them (the programs compiled in training)."""
  return _load(
      diffusion_runs["ddpm"],
      f"--config.eval.sample_quality.classifier_workdir={tiny_runs['classifier']}",
      "--config.eval.sample_quality.num_images=16",
      "--config.eval.batch_size=8",
  )


def test_the_sampler_uses_the_weight_average_by_default(ddpm_run):
  state = ddpm_run.state

  # Random weights everywhere (the zero-initialised output convolutions would make every network predict 0).
  def perturb(params, seed):
    """The weights plus noise, drawn on the host (no program to compile) and placed as restored weights are."""
    rng = np.random.default_rng(seed)
    noisy = jax.tree.map(lambda p: np.asarray(p) + 0.1 * rng.standard_normal(p.shape, np.float32), params)
    return jax.device_put(noisy, ddpm_run.experiment.state_sharding.params)

  trained, averaged = perturb(state.params, 1), perturb(state.params, 2)
  generate = lambda params, ema_params: ddpm_run.experiment.generate(
      state.replace(params=params, ema_params=ema_params), jax.random.key(3), 8
  )
  samples = generate(trained, averaged)
  np.testing.assert_array_equal(samples, generate(averaged, averaged))
  assert not np.allclose(samples, generate(trained, trained))
  assert ddpm_run.experiment.trainer.sampler.protocol["weights"] == "weight average (EMA)"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"diffusion.sampling.steps": 51}, "sampling.steps=51: DDIM takes between 1 and the process's 50 steps"),
        ({"diffusion.schedule": "quadratic"}, "config.diffusion.schedule='quadratic' is not one of linear, cosine"),
        ({"diffusion.prediction": "score"}, "config.diffusion.prediction='score' is not one of epsilon, x0, v"),
        ({"diffusion.sampling.guidance_scale": 1.0}, "guidance_scale=1.0 guides a class-conditional model"),
        (
            {"model.num_classes": 10, "diffusion.sampling.guidance_scale": 1.0},
            "Classifier-free guidance needs the unconditional model that label dropout trains",
        ),
        ({"model.channel_multipliers": (1, 2, 2, 2)}, "28x28 images are not divisible by 8"),
        ({"diffusion.variance": "learned"}, "config.diffusion.variance='learned' is not one of fixed_large"),
        ({"diffusion.vlb_weight": -0.1}, "config.diffusion.vlb_weight=-0.1 must be >= 0"),
    ],
)
def test_impossible_settings_are_refused_before_anything_compiles(overrides, message):
  config = tiny_config("ddpm")
  config_lib.set_values(config, overrides)
  with pytest.raises(errors.UserError, match=re.escape(message)):
    trainers.make_trainer(config, MNIST_SPEC)


def test_a_step_on_8_devices_equals_one_on_1_device(digits, devices):
  config = tiny_config("ddpm")
  raw = pipeline.StreamReader(digits.train, digits.spec, pipeline.Stream(config.seed, 1, config.train.batch_size))(0)
  results = []
  for mesh_devices in (devices, devices[:1]):
    built = experiment.build(config, digits.spec, mesh_devices)  # The production jit, donation included.
    state, metrics = built.train_step(built.init(), built.host_feed(raw), built.load_frozen(None))
    results.append(jax.device_get((state, metrics)))
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5), *results)


def test_a_learned_variance_model_outputs_twice_the_channels_trains_on_the_hybrid_loss_and_samples_ancestrally(digits):
  config = tiny_config("ddpm", diffusion__variance="learned_range", diffusion__sampling__sampler="ddpm")
  built = experiment.build(config, digits.spec, jax.devices()[:1])
  raw = pipeline.StreamReader(digits.train, digits.spec, pipeline.Stream(config.seed, 1, config.train.batch_size))(0)
  state = built.init()
  output_kernels = [leaf.shape for leaf in jax.tree.leaves(state.params) if leaf.ndim == 4 and leaf.shape[-1] <= 2]
  assert output_kernels == [(3, 3, 8, 2)]  # Grey digits: the prediction and the variance interpolation.
  state, metrics = built.train_step(state, built.host_feed(raw), built.load_frozen(None))
  assert np.isfinite(jax.device_get(metrics["loss"]))
  samples = np.asarray(built.generate(state, jax.random.key(1), 4))
  assert samples.shape == (4, 28, 28, 1) and np.all(np.abs(samples) <= 1)
  assert built.trainer.sampler.protocol["sampler"] == "ancestral (DDPM), 50 steps"


def test_resuming_the_tiny_run_from_step_2_reproduces_its_step_4_state(diffusion_runs, tmp_path):
  straight = diffusion_runs["ddpm"]
  resumed = str(tmp_path / "resumed")
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "4"))
  config = workdirs.read_config(resumed)
  config.evals = ()  # Training alone.
  train_loop.run(config, resumed)
  straight_state, resumed_state = (_load(workdir, step=4).state for workdir in (straight, resumed))
  for field in ("params", "ema_params", "opt_state"):
    jax.tree.map(np.testing.assert_array_equal, getattr(resumed_state, field), getattr(straight_state, field))


def test_the_tiny_run_is_scored_by_the_offline_evaluators_on_its_samples_and_likelihood(ddpm_run):
  run = ddpm_run
  # The first 16 eval images (the bound runs T network passes per image).
  small_eval_split = dataclasses.replace(run.data, eval=[run.data.eval[index] for index in range(16)])
  context = evaluators.Context(run.experiment, lambda: small_eval_split, run.config.eval, 0)
  assert evaluators.applicable(evaluators.OFFLINE, context) == ["sample_quality", "likelihood", "reconstruction"]
  # Reconstructions (DDIM inversion, then decoding) are drawn by the run's grids already; the budget leaves them out.
  built = evaluators.build(["sample_quality", "likelihood"], context)
  metrics, _ = evaluators.run(built, run.state, run.step)
  assert {"fid", "kid", "precision", "recall", "vlb_nats", "vlb_bits_per_dim"} <= set(metrics)
  assert all(np.isfinite(value) for value in metrics.values())
  np.testing.assert_allclose(metrics["vlb_bits_per_dim"], metrics["vlb_nats"] / (784 * math.log(2)), rtol=1e-5)
  protocol = {key: value for evaluator in built for key, value in evaluator.protocol.items()}
  assert protocol["sampler"] == "DDIM, 3 of 50 steps, eta 0.0" and protocol["weights"] == "weight average (EMA)"
  assert protocol["vlb"].startswith("all 50 terms")
