"""Specification of restoration: the degradations, the fully convolutional networks, tiled restoration of images of
any size, and the restoration family trained, evaluated beside classical baselines, and applied with
experiments/restore.py (`tools.restore_files`), on the photographs bundled with scikit-image."""

import json
import os
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import run_command
from conftest import load_config
from genjax import baselines
from genjax import errors
from genjax import pixels
from genjax import restoring
from genjax import runs
from genjax import tools
from genjax.data import degradations
from genjax.data import photos
from genjax.data import sources
from genjax.evaluators import offline
from genjax.models import restorers
from genjax.trainers import contract
from genjax.trainers import restoration


def test_noise_has_the_asked_standard_deviation_on_the_8_bit_scale():
  clean = jnp.full((4, 64, 64, 1), 0.5)
  noise = degradations.add_noise(clean, jax.random.key(0), 25.0) - clean
  assert abs(float(jnp.mean(noise))) < 0.002
  assert float(jnp.std(noise)) == pytest.approx(25 / 255, rel=0.02)


def test_blind_noise_draws_each_images_sigma_from_the_range():
  clean = jnp.zeros((64, 32, 32, 1))
  sigmas = jnp.std(degradations.add_noise(clean, jax.random.key(1), (5.0, 50.0)), axis=(1, 2, 3)) * 255
  assert float(sigmas.min()) > 4.5 and float(sigmas.max()) < 52
  assert float(sigmas.max() - sigmas.min()) > 30  # Spread over the range, not one sigma for all.


def test_bicubic_downscaling_matches_pils_antialiased_bicubic():
  photo = photos.load("astronaut.png")[:240, :240]
  for scale in (2, 3, 4):
    ours = np.asarray(degradations.downscale(jnp.asarray(photo[None], jnp.float32) / 255, scale)[0]) * 255
    reference = np.asarray(Image.fromarray(photo).resize((240 // scale, 240 // scale), Image.BICUBIC), np.float32)
    np.testing.assert_allclose(ours, np.round(ours), atol=1e-3)  # 8-bit values, as low-resolution images are stored.
    interior = (slice(4, -4), slice(4, -4))  # Borders: PIL and XLA extend the image differently.
    assert np.mean(np.abs(ours[interior] - reference[interior])) < 1.0, scale


def test_masks_cover_what_they_say():
  center = degradations.masks(jax.random.key(0), (2, 64, 48), "center")
  assert center.shape == (2, 64, 48, 1)
  assert float(center.sum()) == 2 * 32 * 24 and float(center[0, 16:48, 12:36].min()) == 1.0
  for kind, (low, high) in {"boxes": (1 / 36, 0.34), "strokes": (0.005, 0.6)}.items():
    drawn = np.asarray(degradations.masks(jax.random.key(1), (16, 64, 64), kind))
    assert set(np.unique(drawn)) == {0.0, 1.0}
    coverage = drawn.mean(axis=(1, 2, 3))
    assert np.all(coverage >= low) and np.all(coverage <= high), (kind, coverage)
    assert len(np.unique(coverage)) > 8  # Each image draws its own.


# The task registry: every task's consequences in one record, read through the restorer.


def test_task_names_are_written_only_in_the_degradation_registry():
  root = pathlib.Path(__file__).resolve().parent.parent
  quoted = re.compile("|".join(f"[\"']{re.escape(name)}[\"']" for name in degradations.TASKS))
  places = {
      str(path.relative_to(root))
      for folder in ("genjax", "experiments")
      for path in (root / folder).rglob("*.py")
      if quoted.search(path.read_text())
  }
  assert places == {"genjax/data/degradations.py"}


def test_every_task_names_architectures_and_baselines_that_exist():
  for degradation in degradations.TASKS.values():
    assert degradation.architectures and set(degradation.architectures) <= set(restoration.ARCHITECTURES)
    assert set(degradation.baselines) <= set(baselines.METHODS)


@pytest.mark.parametrize(
    "task, needs_mask, scores_on_luma, whole_images, baselines_scored",
    [
        ("denoise", False, False, True, ("tv", "nlm", "bm3d")),
        ("super_resolution", False, True, True, ("bicubic",)),
        ("inpaint", True, False, False, ("biharmonic",)),
    ],
)
def test_each_task_keeps_the_conventions_of_its_field(task, needs_mask, scores_on_luma, whole_images, baselines_scored):
  degradation = degradations.TASKS[task]
  assert degradation.name == task
  assert degradation.needs_mask == needs_mask and degradation.scores_on_luma == scores_on_luma
  assert degradation.whole_images == whole_images and degradation.baselines == baselines_scored


@pytest.mark.parametrize(
    "task, architecture, message",
    [
        ("denoise", "unet", "config.task='denoise' takes config.model.architecture='dncnn', not 'unet'."),
        (
            "super_resolution",
            "srgan",
            "takes config.model.architecture='subpixel' or 'srresnet' or 'rrdb', not 'srgan'.",
        ),
        ("inpaint", "dncnn", "takes config.model.architecture='unet', not 'dncnn'."),
    ],
)
def test_a_task_refuses_an_architecture_it_does_not_allow_by_name(task, architecture, message):
  config = load_config(task)
  config.model.architecture = architecture
  with pytest.raises(errors.UserError, match=re.escape(message)):
    restoration.check_config(config, sources.ExampleSpec.images((64, 64, 1)))


@pytest.mark.parametrize(
    "task, scale, multiple, degraded_side",
    # The runlocal U-Net has three levels: sides must be multiples of 4.
    [("denoise", 1, 1, 64), ("super_resolution", 2, 2, 32), ("inpaint", 1, 4, 64)],
)
def test_the_restorer_carries_its_tasks_degradation_record(task, scale, multiple, degraded_side):
  config = load_config(task)
  degradation = degradations.TASKS[task]
  restorer = restoration.make_trainer(config, sources.ExampleSpec.images((64, 64, 1))).restorer
  assert restorer.degradation is degradation
  assert restorer.scale == degradation.scale(config.restoration) == scale and restorer.multiple == multiple
  clean, key = jnp.full((2, 64, 64, 1), 0.5), jax.random.key(0)
  degraded, mask = restorer.degrade(clean, key)
  assert degraded.shape == (2, degraded_side, degraded_side, 1)
  assert (mask is not None) == degradation.needs_mask
  expected, _ = degradation.make_degrade(config.restoration)(clean, key)
  np.testing.assert_array_equal(degraded, expected)


@pytest.mark.parametrize(
    "network, arguments, scale, odd_size",
    [
        (restorers.DnCNN(depth=4, features=8), lambda x: (x,), 1, (37, 21)),
        (restorers.SubPixelSR(scale=3, features=8, num_blocks=1), lambda x: (x,), 3, (37, 21)),
        (restorers.SubPixelSR(scale=4, features=8, num_blocks=1), lambda x: (x,), 4, (37, 21)),
        # Two levels: sides must be even, for the one pooling.
        (restorers.InpaintingUNet(channels=(4, 8)), lambda x: (x, jnp.zeros_like(x[..., :1])), 1, (38, 22)),
    ],
)
def test_networks_are_fully_convolutional(network, arguments, scale, odd_size):
  # Shapes alone (jax.eval_shape): nothing is compiled or run.
  init = lambda images: network.init(jax.random.key(0), *arguments(images), train=False)
  variables = jax.eval_shape(init, jnp.zeros((1, 16, 16, 3)))
  apply = lambda variables, images: network.apply(variables, *arguments(images), train=False)
  for height, width in [(16, 16), odd_size]:
    output = jax.eval_shape(apply, variables, jnp.zeros((2, height, width, 3)))
    assert output.shape == (2, scale * height, scale * width, 3)


def _tiny_restorer(task, multiple=1, scale=1):
  """A random 3-layer DnCNN (receptive field 3 pixels each way) or sub-pixel network behind a Restorer."""
  network = restorers.SubPixelSR(scale, 4, 0) if scale > 1 else restorers.DnCNN(3, 4)
  variables = network.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), train=False)
  apply = jax.jit(lambda tiles: network.apply(variables, tiles, train=False))
  return contract.Restorer(degradations.TASKS[task], None, None, scale, multiple), lambda tiles, masks: apply(tiles)


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_restoration_equals_whole_image_restoration(scale):
  restorer, restore = _tiny_restorer("denoise" if scale == 1 else "super_resolution", scale=scale)
  image = np.asarray(jax.random.uniform(jax.random.key(1), (101, 77, 1)))
  whole = restoring.apply_tiled(restore, image, restoring.Tiling(tile=512, margin=8), restorer.multiple, scale)
  tiled = restoring.apply_tiled(
      restore, image, restoring.Tiling(tile=32, margin=8, batch_size=3), restorer.multiple, scale
  )
  assert whole.shape == tiled.shape == (101 * scale, 77 * scale, 1)
  np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_tiles_align_to_the_networks_multiple():
  tiling = restoring.Tiling(tile=100, margin=5).aligned(8)
  assert (tiling.tile, tiling.margin) == (104, 8)
  assert restoring.Tiling(tile=16, margin=16).aligned(8).tile == 40  # Room for a core.


def test_training_patches_are_cut_inside_each_image_not_its_padding():
  from conftest import train_batch
  from genjax.data import sources

  images = [{"image": np.full(shape, 200, np.uint8)} for shape in [(300, 40, 3), (40, 300, 3), (64, 64, 3)]]
  train = sources.PaddedSplit(images, 40, "bright")  # Padded with black to 300x300.
  data = sources.DataSource("bright", train, images, sources.ExampleSpec.images((40, 40, 3), sized=True))
  config = load_config("denoise")
  config.data.channels, config.train.batch_size = 3, 24
  batch = train_batch(config, data)
  assert batch["image"].shape == (1, 24, 40, 40, 3)
  np.testing.assert_allclose(batch["image"], 200 / 255, atol=1e-6)


# End to end: tiny runs of each task on the bundled photographs, as users run them.


@pytest.mark.parametrize(
    "task, scores",
    [
        ("denoise", {"psnr", "ssim"}),
        ("super_resolution", {"psnr", "ssim"}),
        ("inpaint", {"psnr", "ssim", "hole_psnr"}),
    ],
)
def test_training_evaluates_whole_held_out_photographs(restoration_runs, task, scores):
  with open(os.path.join(restoration_runs[task], "metrics.jsonl")) as f:
    eval_line = [json.loads(line) for line in f if '"eval"' in line][-1]
  assert scores <= set(eval_line) and all(np.isfinite(eval_line[score]) for score in scores)
  strips = np.asarray(Image.open(os.path.join(restoration_runs[task], "samples", "restoration_00000004.png")))
  # Two strips of degraded | restored | clean under a 16-pixel band that names the columns; inpainting's 64x64
  # crops are shown at twice their size, every image at 128 pixels or more.
  band, grid = strips[:16], strips[16:]
  cell = (grid.shape[1] - 1) // 3 - 1
  assert cell >= 128 and grid.shape[0] == 2 * (cell + 1) + 1
  for column in range(3):
    assert band[:, 1 + column * (cell + 1) : (column + 1) * (cell + 1)].max() == 255  # A label over each column.


def _load(workdir, *overrides):
  return runs.load(workdir, overrides=overrides, devices=jax.devices()[:1])


def test_evaluate_scores_the_run_beside_its_baselines(restoration_runs, tmp_path):
  # The tiny runs skip baselines in training (config.eval.restoration.baselines=False); the option asks for them.
  run = _load(restoration_runs["super_resolution"], "--config.eval.restoration.baselines=True")
  metrics = offline.evaluate(run, 0, str(tmp_path)).metrics
  with open(tmp_path / "metrics.json") as f:
    report = json.load(f)
  assert report["metrics"] == pytest.approx(metrics)
  assert metrics["bicubic_psnr"] > 25 and metrics["bicubic_ssim"] > 0.7  # Bicubic x2 on these photographs.
  with open(os.path.join(restoration_runs["super_resolution"], "metrics.jsonl")) as f:
    in_training = [json.loads(line) for line in f if '"eval"' in line][-1]
  assert metrics["psnr"] == pytest.approx(in_training["psnr"], abs=1e-4)  # One evaluator, in training and after.
  assert report["protocol"]["restoration_images"] == "4 whole images of photos/test"


def test_evaluate_scores_a_folder_of_your_own_clean_images(restoration_runs, tmp_path, caplog):
  _write_images(tmp_path / "mine", {"a.png": (64, 80), "nested/b.jpg": (72, 48)})
  (tmp_path / "mine" / "broken.png").write_bytes(b"not a png")
  run = _load(restoration_runs["denoise"], "--config.eval.restoration.baselines=True")
  metrics = offline.evaluate(run, 0, str(tmp_path / "out"), str(tmp_path / "mine")).metrics
  assert "Skipped 1 unreadable file in" in caplog.text and "broken.png" in caplog.text
  with open(tmp_path / "out" / "metrics.json") as f:
    report = json.load(f)
  assert report["protocol"]["restoration_images"] == f"2 whole images of {tmp_path / 'mine'}"
  assert {"psnr", "ssim", "tv_psnr", "nlm_psnr"} <= set(metrics)
  # The run takes grey images: said once, naming its channels.
  assert caplog.text.count("are in colour") == 1 and "2 of 2 images are in colour" in caplog.text
  assert "takes grey images (1 channel, config.data.channels=1)" in caplog.text


def _write_images(folder, sizes):
  for name, (height, width) in sizes.items():
    pixels.save_image(str(folder / name), photos.load("coffee.png")[:height, :width])


@pytest.mark.cli  # One process per tool, for the exit-status wiring; the rest is tested in-process.
def test_restore_command_writes_every_image_of_a_folder_at_its_size(restoration_runs, tmp_path):
  inputs, outputs = tmp_path / "in", tmp_path / "out"
  _write_images(inputs, {"a.png": (37, 53), "nested/b.jpg": (300, 290), "c.bmp": (16, 16)})  # b: tiles of 64.
  (inputs / "notes.txt").write_text("not an image: ignored")
  result = run_command(
      "restore.py",
      f"--workdir={restoration_runs['super_resolution']}",
      f"--input={inputs}",
      f"--out_dir={outputs}",
      "--tile=64",
  )
  assert result.returncode == 0, result.stderr
  written = {str(path.relative_to(outputs)): Image.open(path) for path in outputs.rglob("*.*")}
  assert {name: image.size for name, image in written.items()} == {
      "a.png": (106, 74),
      "nested/b.jpg": (580, 600),
      "c.bmp": (32, 32),
  }
  assert {image.mode for image in written.values()} == {"L"}  # The run's channels.


def _restore(workdir, out_dir, **request):
  return tools.restore_files(_load(workdir), str(out_dir), tools.RestoreRequest(**request))


def test_restore_inpaints_with_a_mask_and_degrades_on_request(restoration_runs, tmp_path):
  _write_images(tmp_path, {"photo.png": (40, 56)})
  mask = np.zeros((40, 56), np.uint8)
  mask[10:20, 10:30] = 255
  Image.fromarray(mask).save(tmp_path / "mask.png")
  _restore(
      restoration_runs["inpaint"], tmp_path / "out", inputs=str(tmp_path / "photo.png"), mask=str(tmp_path / "mask.png")
  )
  original = pixels.read_image(str(tmp_path / "photo.png"), 1)
  filled = pixels.read_image(str(tmp_path / "out" / "photo.png"), 1)
  known = mask == 0
  assert np.abs(filled[known].astype(int) - original[known]).max() <= 1  # Known pixels are kept.

  _restore(restoration_runs["denoise"], tmp_path / "demo", inputs=str(tmp_path / "photo.png"), degrade=True)
  noisy = pixels.read_image(str(tmp_path / "demo" / "photo_degraded.png"), 1).astype(float)
  assert 15 < np.std(noisy - original) < 35  # sigma 25 on the 8-bit scale (clipped at black and white).


@pytest.mark.parametrize(
    "run, request_fields, message",
    [
        ("inpaint", {"mask": "mask file"}, "its mask"),
        ("inpaint", {}, "Inpainting needs --mask"),
        ("super_resolution", {"scale": 4}, "trained to upscale by 2"),
        ("denoise", {"inputs": "missing file"}, "does not exist"),
    ],
)
def test_restore_refuses_bad_input_with_one_message(restoration_runs, tmp_path, run, request_fields, message):
  _write_images(tmp_path, {"photo.png": (40, 56)})
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "mask.png")
  paths = {"mask file": str(tmp_path / "mask.png"), "missing file": str(tmp_path / "nothing_here")}
  request = {"inputs": str(tmp_path / "photo.png")}
  request.update({key: paths.get(value, value) for key, value in request_fields.items()})
  with pytest.raises(errors.UserError, match=re.escape(message)):
    _restore(restoration_runs[run], tmp_path / "out", **request)


def test_restore_refuses_a_run_that_is_not_a_restoration_run(tiny_runs, tmp_path):
  _write_images(tmp_path, {"photo.png": (40, 56)})
  with pytest.raises(errors.UserError, match="is a 'vae' run"):
    _restore(tiny_runs["vae"], tmp_path / "out", inputs=str(tmp_path))


def test_an_unreadable_input_is_skipped_and_named_and_only_no_readable_input_is_an_error(
    restoration_runs, tmp_path, caplog
):
  _write_images(tmp_path / "in", {"photo.png": (40, 56)})
  (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
  written = _restore(restoration_runs["denoise"], tmp_path / "out", inputs=str(tmp_path / "in"))
  assert written == [str(tmp_path / "out" / "photo.png")]
  assert "Skipped 1 unreadable file in" in caplog.text and "broken.png" in caplog.text
  with pytest.raises(errors.UserError, match="Could not read any of the 1 inputs:\n  broken.png"):
    _restore(restoration_runs["denoise"], tmp_path / "out", inputs=str(tmp_path / "in" / "broken.png"))


def test_images_over_pillows_decompression_bomb_bound_are_read_up_to_the_stated_one(tmp_path, monkeypatch):
  _write_images(tmp_path, {"photo.png": (40, 56)})
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow would refuse this 2,240-pixel image as a bomb...
  assert pixels.read_image(str(tmp_path / "photo.png"), 3, max_pixels=2240).shape == (40, 56, 3)  # ...genjax reads it.
  with pytest.raises(pixels.ImageTooLarge, match="56x40 = 2,240 pixels, more than the 2,239 read"):
    pixels.read_image(str(tmp_path / "photo.png"), 3, max_pixels=2239)
  assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's bound is left as it was.


def test_restore_skips_an_image_over_its_pixel_bound_by_name(restoration_runs, tmp_path):
  _write_images(tmp_path, {"photo.png": (40, 56)})
  with pytest.raises(errors.UserError, match=r"photo.png \(56x40 = 2,240 pixels, .*; --max_pixels reads larger"):
    _restore(restoration_runs["denoise"], tmp_path / "out", inputs=str(tmp_path / "photo.png"), max_pixels=1000)
  assert restoring.MAX_PIXELS >= 20000 * 10000  # The size of the image that issue 19 found refused.


def test_colour_images_given_to_a_grey_model_are_named_once(restoration_runs, tmp_path, caplog):
  _write_images(tmp_path / "in", {"colour.png": (40, 56), "other.png": (40, 56)})
  pixels.save_image(str(tmp_path / "in" / "grey.png"), np.full((40, 56, 1), 128, np.uint8))
  _restore(restoration_runs["denoise"], tmp_path / "out", inputs=str(tmp_path / "in"))
  assert caplog.text.count("are in colour") == 1
  assert "2 of 3 images are in colour (e.g. colour.png)" in caplog.text and "1 channel" in caplog.text
  assert pixels.has_colour(str(tmp_path / "in" / "colour.png"))
  assert not pixels.has_colour(str(tmp_path / "in" / "grey.png"))
