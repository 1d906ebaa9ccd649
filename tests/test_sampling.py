"""Specification of genjax.sampling and experiments/sample.py (`tools.write_samples`): interpolation paths, sample
export, and the files the tool writes for each model family; one run of the command checks its wiring."""

import os

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import MNIST_SPEC, run_command, tiny_config
from genjax import errors
from genjax import experiment
from genjax import pixels
from genjax import runs
from genjax import sampling
from genjax import tools
from genjax import writers


def test_linear_interpolation_walks_the_segment_with_both_ends():
  start, end = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[2.0, 0.0], [1.0, 3.0]])
  path = sampling.interpolate(start, end, 3, "linear")
  np.testing.assert_allclose(path, [[[0, 0], [1, 0], [2, 0]], [[1, 1], [1, 2], [1, 3]]])


def test_spherical_interpolation_follows_the_great_circle_and_interpolates_the_norm():
  start, end = np.array([[2.0, 0.0]]), np.array([[0.0, 4.0]])
  path = sampling.interpolate(start, end, 3, "spherical")[0]
  np.testing.assert_allclose(path[[0, -1]], [[2, 0], [0, 4]], atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(path[1]), 3.0, rtol=1e-6)  # Halfway in norm...
  np.testing.assert_allclose(path[1] / np.linalg.norm(path[1]), [np.sqrt(0.5)] * 2, rtol=1e-6)  # ...and in angle.


def test_spherical_interpolation_of_parallel_points_is_the_segment():
  start, end = np.array([[1.0, 1.0]]), np.array([[2.0, 2.0]])
  np.testing.assert_allclose(
      sampling.interpolate(start, end, 4, "spherical"), sampling.interpolate(start, end, 4, "linear"), rtol=1e-6
  )


@pytest.mark.parametrize("file_format", ["npz", "png"])
def test_export_writes_8_bit_images_that_read_back(file_format, tmp_path):
  images = np.linspace(-1, 1, 3 * 4 * 4).reshape(3, 4, 4, 1)
  path = sampling.export(images, (-1.0, 1.0), str(tmp_path / "samples"), file_format)
  if file_format == "npz":
    read = np.load(path)["images"]
  else:
    read = np.stack([np.asarray(Image.open(os.path.join(path, name)))[..., None] for name in sorted(os.listdir(path))])
  np.testing.assert_array_equal(read, pixels.to_uint8(images, (-1.0, 1.0)))
  assert read.dtype == np.uint8 and read[0, 0, 0, 0] == 0 and read[-1, -1, -1, 0] == 255


def test_generate_draws_the_requested_number_in_batches(tiny_runs):
  run = runs.load(tiny_runs["vae"])
  images = sampling.generate(run.experiment, run.state, 10, jax.random.key(0), batch_size=4)
  assert images.shape == (10, 28, 28, 1)
  again = sampling.generate(run.experiment, run.state, 4, jax.random.key(0), batch_size=4)
  np.testing.assert_array_equal(images[:4], again)


def test_loading_a_missing_step_or_an_empty_workdir_is_refused(tiny_runs, tmp_path):
  with pytest.raises(errors.UserError, match="no checkpoint at step 3; it has: 2, 4"):
    runs.load(tiny_runs["vae"], step=3)
  with pytest.raises(errors.UserError, match="is not a genjax run: it has no config.json"):
    runs.load(str(tmp_path))


def _load(workdir, *overrides):
  return runs.load(workdir, overrides=overrides, devices=jax.devices()[:1])


@pytest.mark.parametrize(
    "name, expected_files",
    [
        ("vae", {"samples.png", "reconstructions.png", "interpolations_spherical.png", "samples"}),
        ("ae", {"reconstructions.png", "interpolations_spherical.png"}),
        ("cgan", {"samples.png", "interpolations_spherical.png", "samples"}),
    ],
)
def test_sampling_writes_grids_interpolations_and_exports(name, expected_files, tiny_runs, tmp_path):
  out_dir = tmp_path / "out"
  request = tools.SampleRequest(num_samples=12, num_interpolations=3, interpolation_steps=5)
  written = tools.write_samples(_load(tiny_runs[name]), str(out_dir), request)
  assert set(os.listdir(out_dir)) == expected_files == {os.path.basename(path) for path in written}
  if "samples" in expected_files:
    assert len(os.listdir(out_dir / "samples")) == 12
  strips = np.asarray(Image.open(out_dir / "interpolations_spherical.png"))
  assert strips.shape == (3 * 29 + 1, 5 * 29 + 1)  # 3 strips of 5 images of 28x28, one-pixel gaps.


@pytest.mark.cli  # One process per tool, for the exit-status wiring; the rest is tested in-process.
def test_sample_command_writes_its_files_and_exits_0(tiny_runs, tmp_path):
  result = run_command(
      "sample.py",
      f"--workdir={tiny_runs['vae']}",
      f"--out_dir={tmp_path}",
      # What the in-process test asks of the same run, so that the programs come from the compilation cache.
      "--num_samples=12",
      "--num_interpolations=3",
      "--interpolation_steps=5",
  )
  assert result.returncode == 0, result.stderr
  assert set(os.listdir(tmp_path)) == {"samples.png", "reconstructions.png", "interpolations_spherical.png", "samples"}
  assert str(tmp_path / "samples.png") in result.stdout


def test_conditional_sample_grid_has_one_full_row_per_class(tiny_runs):
  run = runs.load(tiny_runs["cgan"])
  grid = sampling.sample_grid(run.experiment, run.state, 20, jax.random.key(0))
  assert grid.shape[:2] == (10 * 29 + 1, 2 * 29 + 1)  # 10 rows (classes) of 2 samples, one-pixel gaps.
  # 25 is no multiple of the 10 classes: still 10 full rows of 2, no stray partial row.
  assert sampling.sample_grid(run.experiment, run.state, 25, jax.random.key(0)).shape == grid.shape


def test_samples_drawn_in_batches_have_the_labels_of_each_batch_class_by_class(tiny_runs):
  built = runs.load(tiny_runs["cgan"]).experiment
  # Batches of 16 and 9 from 10 classes: one of each class in turn, in each batch.
  expected = [*range(10), *range(6), *range(9)]
  assert sampling.generated_labels(built, 25, batch_size=16).tolist() == expected
  assert sampling.generated_labels(runs.load(tiny_runs["vae"]).experiment, 25, batch_size=16) is None


def test_rows_in_groups_keep_each_image_above_its_pair_whatever_the_count():
  originals, reconstructions = np.full((5, 2, 2, 1), 0.2), np.full((5, 2, 2, 1), 0.8)
  grid = writers.grouped_rows_grid([originals, reconstructions], (0.0, 1.0))
  cells = grid[1:, 1:, 0].reshape(4, 3, 3, 3)[:, :2, :, :2]  # [row, height, column, width] without the gaps.
  cell_values = cells[:, 0, :, 0]
  # 3 columns: a strip of originals 0-2 above their reconstructions, then 3-4 above theirs, each beside a blank.
  np.testing.assert_array_equal(cell_values, [[51, 51, 51], [204, 204, 204], [51, 51, 0], [204, 204, 0]])


def test_a_denoising_autoencoders_grid_shows_the_noisy_inputs_it_is_given(digits):
  config = tiny_config("ae", model__input_noise_std=0.5)
  built = experiment.build(config, MNIST_SPEC, jax.devices()[:1])
  images = sampling.first_images(built, digits.eval, 4)
  grid = sampling.reconstruction_grid(built, built.init(), images, jax.random.key(0))
  assert grid.shape[:2] == (6 * 29 + 1, 2 * 29 + 1)  # 2 strips of 2 images, each as noisy, reconstructed, clean.
  rows = [grid[1 + 29 * row : 29 * (row + 1), 1:29, 0] for row in range(6)]
  np.testing.assert_array_equal(rows[2], pixels.to_uint8(images[0, ..., 0], (0.0, 1.0)))  # Clean, third.
  assert np.abs(rows[0].astype(int) - rows[2]).mean() > 20  # The input given: noisy.


def test_a_run_that_draws_no_images_leaves_no_samples_folder(tiny_runs):
  assert not os.path.exists(os.path.join(tiny_runs["classifier"], "samples"))
  assert os.listdir(os.path.join(tiny_runs["vae"], "samples"))


def test_config_overrides_apply_to_the_saved_config(tiny_runs, tmp_path):
  with pytest.raises(errors.UserError, match='Did you mean "name"'):
    _load(tiny_runs["vae"], "--config.data.nmae=mnist")
  renamed = _load(tiny_runs["vae"], "--config.data.name=mnistt")
  with pytest.raises(errors.UserError, match="Unknown dataset 'mnistt'"):
    tools.write_samples(renamed, str(tmp_path), tools.SampleRequest())


def test_endpoints_of_the_wrong_size_are_refused(tiny_runs, tmp_path):
  endpoints = tmp_path / "points.npy"
  np.save(endpoints, np.zeros((2, 3, 99)))
  request = tools.SampleRequest(num_reconstructions=0, endpoints=str(endpoints))
  with pytest.raises(errors.UserError, match=r"--endpoints must hold an array \[2, strips, 4\]"):
    tools.write_samples(_load(tiny_runs["vae"]), str(tmp_path), request)
