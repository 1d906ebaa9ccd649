"""Specification of the translation family (pix2pix and CycleGAN): the reference's networks, the steps' losses and
their weights, the pool of past fakes, separate networks per direction, exact resume, 8 devices == 1, the offline
known-map tasks, and refusals."""

import dataclasses
import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config, run_command, tiny_config, train_batch
from genjax import errors
from genjax import experiment
from genjax import runs
from genjax import train_loop
from genjax import writers
from genjax.data import known_maps
from genjax.data import pipeline
from genjax.data import sources
from genjax.evaluators import translation as evaluation
from genjax.models import layers
from genjax.models import translators
from genjax.trainers import contract
from genjax.trainers import translation


@pytest.fixture(scope="module")
def digit_pairs(digits):
  """The 40 test digits as pairs (digit, its thickening)."""
  pairs = lambda split: [{"image": e["image"], "target": known_maps.thicken(e["image"])} for e in split]
  return sources.in_memory("thicker_digits", pairs(digits.train), pairs(digits.eval))


def _num_params(module, *arguments):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), *arguments, train=False))
  return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


def test_networks_have_the_reference_implementations_parameter_counts():
  # As the reference prints them for pix2pix and CycleGAN at 256 px with 3 channels (networks.py, ngf = ndf = 64).
  images = jnp.zeros((1, 256, 256, 3))
  assert _num_params(translators.UNetGenerator(3, num_downs=8), images) == 54_413_955
  assert _num_params(translators.ResNetGenerator(3, num_blocks=9), images) == 11_378_179
  assert _num_params(translators.PatchDiscriminator(), images, images) == 2_768_705  # Conditional: 6 channels in.
  assert _num_params(translators.PatchDiscriminator(norm="instance"), images, None) == 2_764_737


@pytest.mark.parametrize(
    "network, shape",
    [
        (translators.UNetGenerator(2, num_downs=3, features=4), (24, 40)),
        (translators.ResNetGenerator(2, num_blocks=1, features=4), (20, 36)),
    ],
)
def test_generators_are_fully_convolutional(network, shape):
  images = jnp.zeros((2, *shape, 3))
  outputs, _ = jax.eval_shape(lambda: network.init_with_output(jax.random.key(0), images, train=False))
  assert outputs.shape == (2, *shape, 2)


def test_transposed_convolution_with_output_padding_has_xlas_gradients():
  x, kernel = jax.random.normal(jax.random.key(0), (2, 5, 5, 3)), jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
  fast = lambda x, k: jnp.sum(jnp.sin(layers.conv_transpose(x, k, 2, 1, 1)))
  plain = lambda x, k: jnp.sum(jnp.sin(layers._conv_transpose(x, k, 2, 1, 1)))
  assert layers.conv_transpose(x, kernel, 2, 1, 1).shape == (2, 10, 10, 4)  # Exactly twice the size.
  gradients = [jax.jit(jax.grad(f, (0, 1)))(x, kernel) for f in (fast, plain)]
  for fast_grad, plain_grad in zip(*gradients):
    np.testing.assert_allclose(fast_grad, plain_grad, rtol=1e-4, atol=1e-4)


def test_the_pool_fills_first_then_shows_a_stored_fake_half_the_time():
  pool = translation.ImagePool.empty(4, (1, 1, 1))
  first = jnp.arange(1.0, 5.0).reshape(4, 1, 1, 1)
  pool, shown = translation.pool_query(pool, first, jax.random.key(0))
  np.testing.assert_array_equal(shown, first)  # While filling, each fake is shown and stored.
  assert int(pool.count) == 4 and sorted(np.ravel(pool.images)) == [1, 2, 3, 4]
  new = jnp.arange(100.0, 1100.0).reshape(1000, 1, 1, 1)
  pool, shown = translation.pool_query(pool, new, jax.random.key(1))
  from_pool = np.ravel(shown) != np.ravel(new)
  assert 0.45 < from_pool.mean() < 0.55
  assert int(pool.count) == 4 and set(np.ravel(pool.images)) <= set(np.ravel(new)) | {1, 2, 3, 4}


def _train_metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [line for line in map(json.loads, f) if line["split"] == "train"]


def _state(workdir):
  return runs.load(workdir, devices=jax.devices()[:1]).state


def test_pix2pix_descends_its_adversarial_loss_plus_100_times_l1_with_a_critic_that_sees_the_input(translation_runs):
  for metrics in _train_metrics(translation_runs["pix2pix"]):  # Averages over logging intervals, linear alike.
    np.testing.assert_allclose(metrics["g_loss"], metrics["g_adversarial"] + 100.0 * metrics["l1"], rtol=1e-5)
  state = _state(translation_runs["pix2pix"])
  assert state.d_params["b"]["Conv_0"]["kernel"].shape[2] == 6  # The input's 3 channels beside the output's.
  assert set(state.g_params) == {contract.A_TO_B} and state.pools == {}


def test_cyclegan_weighs_cycle_10_and_identity_5_and_trains_each_network_on_its_own(translation_runs):
  for metrics in _train_metrics(translation_runs["cyclegan"]):
    expected = sum(
        2.0 * metrics[f"g_adversarial_{d}"] + 10.0 * metrics[f"cycle_{d}"] + 5.0 * metrics[f"identity_{d}"]
        for d in "ab"
    )
    np.testing.assert_allclose(metrics["g_loss"], expected, rtol=1e-5)
  state = _state(translation_runs["cyclegan"])
  for field in ("g_params", "g_opt_state", "g_batch_stats"):
    assert set(getattr(state, field)) == {contract.A_TO_B, contract.B_TO_A}
  for field in ("d_params", "d_opt_state", "d_batch_stats", "pools"):
    assert set(getattr(state, field)) == {"a", "b"}
  a_to_b, b_to_a = (jax.tree.leaves(state.g_params[d]) for d in (contract.A_TO_B, contract.B_TO_A))
  assert not any(np.array_equal(x, y) for x, y in zip(a_to_b, b_to_a))
  first_moments = [state.g_opt_state[d][0].mu["Conv_0"]["kernel"] for d in (contract.A_TO_B, contract.B_TO_A)]
  assert not np.array_equal(*first_moments)
  assert int(state.pools["a"].count) == int(state.pools["b"].count) == 4  # Full: 4 steps of 16 fakes.


class _PreemptedAt(writers.MemoryWriter):
  """Sends this process SIGTERM, as a scheduler would, when the training metrics of `step` arrive."""

  def __init__(self, step: int):
    super().__init__()
    self._step = step

  def write_metrics(self, step, split, metrics):
    super().write_metrics(step, split, metrics)
    if split == "train" and step == self._step:
      os.kill(os.getpid(), signal.SIGTERM)


def test_cyclegan_resumes_exactly_with_its_pool(translation_runs, tfds_data_dir, tmp_path):
  config = tiny_config("cyclegan", eval__translation__crop_size=64)  # The tiny run's: its programs are cached.
  config.data.data_dir = tfds_data_dir
  config.evals = ()  # Training alone: evaluating changes no state.
  data = sources.open_source(config.data)
  with pytest.raises(errors.Stopped, match="Stopped at step 2"):
    train_loop.train_and_evaluate(config, str(tmp_path), data, _PreemptedAt(2))
  resumed = train_loop.train_and_evaluate(config, str(tmp_path), data, writers.MemoryWriter())
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), _state(translation_runs["cyclegan"]))


def test_a_pix2pix_step_on_8_devices_equals_one_on_1_device(digit_pairs, devices):
  config = tiny_config("pix2pix", data__channels=0, data__patch_size=0, evals=())
  raw = pipeline.StreamReader(digit_pairs.train, digit_pairs.spec, pipeline.Stream(0, 1, config.train.batch_size))(0)
  results = []
  for mesh_devices in (devices, devices[:1]):
    built = experiment.build(config, digit_pairs.spec, mesh_devices)
    state, metrics = built.train_step(built.init(), built.host_feed(raw), built.load_frozen(digit_pairs))
    results.append(jax.device_get((state.g_params, state.d_params, metrics)))
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5), *results)


def test_a_pairs_crops_and_flips_agree(photo_pairs):
  config = tiny_config("pix2pix", data__patch_size=0, data__random_flip=True)
  batch = train_batch(config, photo_pairs)
  luma = np.asarray(batch["target"]) @ np.array([0.299, 0.587, 0.114], np.float32)
  np.testing.assert_allclose(np.asarray(batch["image"])[..., 0], luma, atol=2 * 2 / 255)  # Rounded to 8 bits.


@pytest.fixture(scope="module")
def photo_pairs():
  """Grey -> colour pairs of 32x32 crops of two photographs, flipped or not."""
  from genjax.data import photos

  photographs = [photos.load(name) for name in ("astronaut.png", "coffee.png")]
  crops = [photo[100 + 40 * i : 132 + 40 * i, 100:132] for photo in photographs for i in range(4)]
  examples = [{"image": known_maps.grey(crop), "target": crop} for crop in crops]
  return sources.in_memory("grey2colour", examples, examples)


def test_the_known_maps_are_what_they_say():
  digit = np.zeros((5, 5, 1), np.uint8)
  digit[2, 2] = 200
  assert np.array_equal(known_maps.thicken(digit)[1:4, 1:4, 0], np.full((3, 3), 200))
  assert known_maps.thicken(digit).sum() == 9 * 200
  photo = np.zeros((8, 8, 3), np.uint8)
  photo[:, 4:] = (255, 0, 0)
  assert set(np.unique(known_maps.grey(photo))) == {0, 76}  # BT.601: 0.299 * 255.
  edges = known_maps.edges(photo)[..., 0]
  assert (edges[:, 3:5] == 0).all() and (edges[:, :2] == 255).all() and (edges[:, 6:] == 255).all()


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(translation__method="pix2pixhd"), "translation.method='pix2pixhd' is not one of pix2pix, cyclegan"),
        (dict(model__generator="vit"), "model.generator='vit' is not one of unet, resnet"),
        (dict(data__pixel_range=(0.0, 1.0)), r"pixel_range=\(-1.0, 1.0\)"),
        (dict(translation__cycle_weight=-1.0), "cycle_weight=-1.0 must be 0 or more"),
        (dict(model__num_downs=4), "multiples of 16; the training images are 28x28"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_name(digit_pairs, changes, message):
  config = tiny_config("cyclegan", data__channels=0, evals=(), **{"model__generator": "unet", **changes})
  with pytest.raises(errors.UserError, match=message):
    translation.make_trainer(config, digit_pairs.spec)


def test_data_without_targets_is_refused(digits):
  with pytest.raises(errors.UserError, match=r"examples of an input and a target.* has image\.$"):
    translation.make_trainer(tiny_config("cyclegan", data__channels=0, evals=()), digits.spec)


def test_an_unknown_known_map_task_is_refused():
  config = load_config("cyclegan", "runlocal")
  with pytest.raises(errors.UserError, match="known_map: tasks are known_map:grey2colour"):
    sources.example_spec(_renamed(config, "known_map:x"))


def _renamed(config, name):
  data = config.data.copy_and_resolve_references()
  data.unlock()
  data.name = name
  return data


def test_the_tiny_runs_train_both_methods_and_translate(translation_runs):
  for name, directions in [("pix2pix", (contract.A_TO_B,)), ("cyclegan", (contract.A_TO_B, contract.B_TO_A))]:
    run = runs.load(translation_runs[name], devices=jax.devices()[:1])
    translator = run.experiment.trainer.translator
    assert run.step == 4 and translator.directions == directions
    side = 4 * translator.multiple
    images = jnp.zeros((1, side, 2 * side, run.experiment.spec.data_shape[-1]))
    for direction in directions:
      assert translator.translate(run.state, images, direction).shape == images.shape


def test_training_scores_translations_against_their_targets(translation_runs):
  for name, scores in [
      ("pix2pix", {"psnr_a_to_b", "ssim_a_to_b", "l1_a_to_b", "sharpness_a_to_b", "identity_psnr"}),
      ("cyclegan", {"psnr_a_to_b", "identity_psnr", "cycle_l1_a", "cycle_l1_b"}),
  ]:
    with open(os.path.join(translation_runs[name], "metrics.jsonl")) as f:
      evaluations = [line for line in map(json.loads, f) if line["split"] == "eval"]
    assert evaluations and scores <= set(evaluations[-1]), (name, evaluations)
    assert all(np.isfinite(evaluations[-1][score]) for score in scores), evaluations[-1]
    assert os.listdir(os.path.join(translation_runs[name], "samples"))


def test_sharpness_compares_high_frequency_energy():
  flat, edges = np.zeros((1, 8, 8, 1)), np.zeros((1, 8, 8, 1))
  edges[:, :, 4:] = 1.0
  assert evaluation.high_frequency_energy(flat)[0] == 0.0
  np.testing.assert_allclose(evaluation.high_frequency_energy(edges), [2 * 6 / 36])  # Two columns of 1s, 6 rows.


def _images_of_odd_sizes(folder):
  from genjax import pixels
  from genjax.data import photos

  sizes = {"a.png": (37, 29), "sub/b.jpg": (21, 40)}
  for name, (height, width) in sizes.items():
    pixels.save_image(str(folder / name), photos.load("coffee.png")[:height, :width])
  (folder / "broken.png").write_bytes(b"not an image")
  return sizes


def test_translate_writes_every_readable_image_of_a_folder_at_its_size_and_name_whole_or_in_tiles(
    translation_runs, tmp_path, caplog
):
  from genjax import pixels
  from genjax import restoring
  from genjax import tools

  sizes = _images_of_odd_sizes(tmp_path / "in")
  run = runs.load(translation_runs["pix2pix"])
  written = tools.translate_files(run, str(tmp_path / "out"), str(tmp_path / "in"), "a_to_b", max_pixels=10**6)
  assert sorted(written) == sorted(str(tmp_path / "out" / name) for name in sizes)
  for name, (height, width) in sizes.items():
    assert pixels.read_image(str(tmp_path / "out" / name), 3).shape == (height, width, 3)
  assert "broken.png" in caplog.text  # Skipped and named, as every tool does.
  # Tiles of 36 pixels (24, aligned for room around a core) with 16 of context, more than the tiny U-Net's reach:
  # every image is cut into tiles, and the tiles make up the whole image's translation.
  tiling = restoring.Tiling(tile=24, margin=16, batch_size=3)
  tools.translate_files(run, str(tmp_path / "tiled"), str(tmp_path / "in"), "a_to_b", 10**6, tiling)
  whole, tiled = (pixels.read_image(str(tmp_path / out / "a.png"), 3).astype(int) for out in ("out", "tiled"))
  assert np.abs(tiled - whole).max() <= 1  # Rounding to 8 bits (the PNG: JPEGs are written lossily).


@pytest.mark.cli
def test_translate_command_writes_under_the_runs_folder_for_its_direction_and_exits_0(translation_runs, tmp_path):
  sizes = _images_of_odd_sizes(tmp_path / "in")
  run = translation_runs["pix2pix"]
  result = run_command("translate.py", f"--workdir={run}", f"--input={tmp_path / 'in'}")
  assert result.returncode == 0, result.stderr
  assert "broken.png" in result.stderr
  for name in sizes:
    assert os.path.exists(os.path.join(run, "translated_a_to_b", "4", "input-in", name))


@pytest.mark.parametrize(
    "run, direction, message",
    [
        ("pix2pix", "b_to_a", "translates a_to_b only"),
        ("vae", "a_to_b", r"is a 'vae' run \(config.family\); translate.py needs a translation run"),
    ],
)
def test_translate_refuses_a_direction_the_run_lacks_and_other_families(
    translation_runs, tiny_runs, tmp_path, run, direction, message
):
  from genjax import pixels
  from genjax import tools

  pixels.save_image(str(tmp_path / "in" / "a.png"), np.zeros((8, 8, 3), np.uint8))
  run = runs.load({**translation_runs, **tiny_runs}[run])
  with pytest.raises(errors.UserError, match=message):
    tools.translate_files(run, str(tmp_path / "out"), str(tmp_path / "in"), direction, max_pixels=10**6)
  assert not os.path.exists(tmp_path / "out")


def _translation_quality(workdir, classifier_workdir):
  from genjax import evaluators

  run = runs.load(workdir, overrides=[f"--config.eval.translation.classifier_workdir={classifier_workdir}"])
  # The first 64 test pairs: enough for the tiny classifier's 8 features, a sixteenth of the split's cost.
  small_eval_split = dataclasses.replace(run.data, eval=[run.data.eval[index] for index in range(64)])
  context = evaluators.Context(run.experiment, lambda: small_eval_split, run.config.eval, 0)
  return run, evaluation.TranslationQuality(context)


def test_a_classifier_reads_translated_digits_and_measures_their_distance_to_the_targets(translation_runs, tiny_runs):
  run, quality = _translation_quality(translation_runs["cyclegan"], tiny_runs["classifier"])
  metrics, _ = quality.run(run.state, run.step)
  assert 0.0 <= metrics["classifier_agreement"] <= 1.0 and 0.0 <= metrics["classifier_agreement_targets"] <= 1.0
  for name in ("fid_a_to_b", "kid_a_to_b", "fid_b_to_a", "kid_b_to_a", "fid_identity"):
    assert np.isfinite(metrics[name]), name
  assert quality.protocol["translation_classifier"].startswith("genjax classifier (mnist5k")


def test_a_classifier_workdir_that_is_no_classifier_is_refused(translation_runs, tiny_runs):
  with pytest.raises(errors.UserError, match="holds a vae run, not a classifier"):
    _translation_quality(translation_runs["cyclegan"], tiny_runs["vae"])


def test_linear_decay_keeps_the_rate_for_half_the_steps_then_decays_it_to_zero():
  from genjax import config_lib
  from genjax.trainers import common

  optimizer = common.make_optimizer(config_lib.optimizer("adam", 2e-4, 0.5, 0.999, "linear_decay"), total_steps=10)
  params, steps = jnp.zeros(()), []
  state = optimizer.init(params)
  for _ in range(10):  # A constant gradient: each Adam step moves by the learning rate itself.
    updates, state = optimizer.update(jnp.ones(()), state, params)
    steps.append(-float(updates))
  np.testing.assert_allclose(steps, 2e-4 * np.array([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2]), rtol=1e-4)


def test_the_thickened_digits_are_two_disjoint_unpaired_halves_and_test_pairs_with_the_true_map(tfds_data_dir):
  config = load_config("cyclegan", "runlocal")
  data_config = _renamed(config, "known_map:thicker_digits")
  data_config.data_dir = tfds_data_dir
  data = sources.open_source(data_config)
  side_a, side_b = data.train.sides
  assert isinstance(data.train, sources.UnpairedSplit) and len(side_a) == len(side_b) == 2000
  digits = [example["image"] for example in sources.open_source(_mnist(config, tfds_data_dir)).train]
  np.testing.assert_array_equal(side_a[3]["image"], digits[6])
  np.testing.assert_array_equal(side_b[3]["target"], known_maps.thicken(digits[7]))
  example = data.eval[5]
  np.testing.assert_array_equal(example["target"], known_maps.thicken(example["image"]))
  assert data.spec.image_fields == ("image", "target") and not data.spec.has_labels


def _mnist(config, data_dir):
  data = _renamed(config, "mnist5k")
  data.data_dir = data_dir
  return data


def test_sample_quality_scores_translations_against_the_targets_once_a_feature_space_is_named(
    translation_runs, tiny_runs
):
  from genjax import evaluators
  from genjax import sampling
  from genjax.evaluators import sample_quality

  def context_of(run):
    return evaluators.Context(run.experiment, lambda: run.data, run.config.eval, 0)

  without_feature_space = context_of(runs.load(translation_runs["cyclegan"]))
  assert evaluators.applicable(evaluators.OFFLINE, without_feature_space) == ["translation"]
  run = runs.load(
      translation_runs["cyclegan"],
      overrides=[
          f"--config.eval.sample_quality.classifier_workdir={tiny_runs['classifier']}",
          "--config.eval.sample_quality.num_images=32",
      ],
  )
  context = context_of(run)
  assert evaluators.applicable(evaluators.OFFLINE, context) == ["sample_quality", "translation"]
  # The real set is the eval split's targets (the thickened digits), not its inputs.
  targets = sampling.first_images(run.experiment, run.data.eval, 4, binarized=False, field=sources.TARGET)
  np.testing.assert_array_equal(sample_quality.real_images(context, 4), targets)
  (quality,) = evaluators.build(["sample_quality"], context)
  metrics, _ = quality.run(run.state, run.step)
  assert quality.protocol["model_images"].startswith("translations a_to_b of the eval inputs")
  assert all(np.isfinite(metrics[name]) for name in ("fid", "kid", "precision", "recall"))
