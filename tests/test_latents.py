"""Specification of latent tools on real images (genjax.latents, experiments/encode.py, sample.py --from_images):
image files are read in the model's shape, encoded as the model encodes its test images, projected onto their
principal components and plotted by label, and two files are the ends of an interpolation strip."""

import os

import numpy as np
import pytest
from PIL import Image

from conftest import run_command
from genjax import errors
from genjax import latents
from genjax import runs
from genjax import sampling
from genjax import tools
from genjax.data import mnist5k


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
  """Digits 0, 1 and 2 (5 of each) as 56x56 PNGs in one subfolder per class, and a file that is not an image."""
  folder = tmp_path_factory.mktemp("digits")
  images, labels = mnist5k.load_rows(mnist5k.bundled_csv_path())
  for label in range(3):
    (folder / f"class_{label}").mkdir()
    for index in np.flatnonzero(labels == label)[:5]:
      Image.fromarray(images[index].squeeze(-1)).resize((56, 56)).save(folder / f"class_{label}" / f"{index}.png")
  (folder / "class_0" / "notes.png").write_text("not an image")
  return folder


def test_a_folder_is_read_in_the_models_shape_and_labelled_by_its_subfolders(tiny_runs, digit_folder):
  run = runs.load(tiny_runs["vae"])
  read = latents.read_folder(run.experiment, str(digit_folder), labelled=True)
  assert read.images.shape == (15, 28, 28, 1)
  assert read.class_names == ["class_0", "class_1", "class_2"]
  np.testing.assert_array_equal(read.labels, np.repeat([0, 1, 2], 5))
  assert "notes.png" not in " ".join(read.names)
  # The VAE binarises its test images; files are prepared the same way.
  assert set(np.unique(read.images)) <= {0.0, 1.0}


def test_codes_of_two_files_are_the_ends_of_an_interpolation(tiny_runs, digit_folder):
  run = runs.load(tiny_runs["ae"])
  files = sorted(str(path) for path in (digit_folder / "class_1").iterdir())[:2]
  start, end = latents.codes_of_files(run.experiment, run.state, files)
  images = latents.read_files(run.experiment, files).images
  np.testing.assert_allclose(np.concatenate([start, end]), sampling.encode(run.experiment, run.state, images))
  path = sampling.interpolate(start, end, 5, "linear")
  np.testing.assert_allclose(path[:, 0], start, atol=1e-6)
  np.testing.assert_allclose(path[:, -1], end, atol=1e-6)
  with pytest.raises(errors.UserError, match="takes two image files"):
    latents.codes_of_files(run.experiment, run.state, files[:1])
  with pytest.raises(errors.UserError, match="Cannot read"):
    latents.read_files(run.experiment, [files[0], str(digit_folder / "class_0" / "notes.png")])


def test_the_projection_keeps_the_directions_of_most_variance():
  rng = np.random.default_rng(0)
  # Codes spread along one direction of 8, a little along a second, hardly at all along the rest.
  codes = rng.normal(size=(200, 8)) * np.array([10.0, 3.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
  points, explained = latents.project(codes)
  assert points.shape == (200, 2)
  assert explained[0] > 0.85 and explained[1] > 0.05
  np.testing.assert_allclose(np.abs(np.corrcoef(points[:, 0], codes[:, 0])[0, 1]), 1.0, atol=1e-3)


def test_a_model_without_an_encoder_is_refused(tiny_runs, tmp_path):
  with pytest.raises(errors.UserError, match="holds a gan model, which has no encoder"):
    tools.write_codes(runs.load(tiny_runs["cgan"]), str(tmp_path))


@pytest.mark.cli  # One process per tool, for the exit-status wiring; the rest is tested in-process.
def test_encode_command_writes_codes_labels_and_the_projection(tiny_runs, digit_folder):
  result = run_command(
      "encode.py", f"--workdir={tiny_runs['vae']}", f"--images={digit_folder}", "--labels_from_subfolders"
  )
  assert result.returncode == 0, result.stderr
  assert "notes.png" in result.stderr  # Skipped, and named.
  # Named by the folder encoded, so that the codes of another folder (or of the test split) never replace these.
  out_dir = os.path.join(tiny_runs["vae"], "codes", "4", f"images-{digit_folder.name}")
  written = np.load(os.path.join(out_dir, "codes.npz"))
  assert written["codes"].shape == (15, 4)  # tiny_config's latent size.
  np.testing.assert_array_equal(written["labels"], np.repeat([0, 1, 2], 5))
  assert written["names"][0].startswith("class_0")
  with Image.open(os.path.join(out_dir, "projection.png")) as plot:
    assert plot.mode == "RGB" and min(plot.size) > 100
