"""What the entry points sample.py, encode.py, restore.py and translate.py do with a restored run (`runs.Run`), as a
library, so that their logic and every refusal are tested in-process; experiments/*.py parse flags and call one
function here. (evaluate.py's and anomaly.py's are in `genjax.evaluators.offline`.)

The pieces they compose live where they belong: drawing in `genjax.sampling`, codes in `genjax.latents`, tiled
restoration in `genjax.restoring`. Each function returns the paths it wrote.
"""

import dataclasses
import functools
import os
from collections.abc import Sequence

import jax
import numpy as np
from absl import logging
from etils import epath

from genjax import console
from genjax import errors
from genjax import latents
from genjax import pixels
from genjax import restoring
from genjax import runs
from genjax import sampling


@dataclasses.dataclass(frozen=True)
class SampleRequest:
  """What `write_samples` draws; a count of 0 leaves that output out.

  num_grid_images:     samples in samples.png.
  num_samples:         samples exported as `file_format` ("png": a folder samples/, "npz": samples.npz).
  num_interpolations:  interpolation strips, each of `interpolation_steps` images along `interpolation`; their
                       ends are `endpoints` (a .npy file), the codes of the two files `from_images`, or drawn.
  num_reconstructions: test images above their reconstructions.
  truncation:          psi of the truncation trick for the samples, grids, exports and "w" interpolations of a
                       model with a style space (None: none).
  style_mixing_size:   a model with a style space: style-mixing grids of this many row and column latents, one per
                       band of `sampling.STYLE_BANDS` (0: none).
  batch_size:          samples generated at once; `seed`: the seed of every draw.
  """

  num_grid_images: int = 64
  num_samples: int = 0
  file_format: str = "png"
  num_interpolations: int = 8
  interpolation_steps: int = 10
  interpolation: str = "spherical"
  endpoints: str | None = None
  from_images: Sequence[str] | None = None
  num_reconstructions: int = 32
  truncation: float | None = None
  style_mixing_size: int = 5
  batch_size: int = 256
  seed: int = 0


def write_samples(run: runs.Run, out_dir: str, request: SampleRequest) -> list[str]:
  """experiments/sample.py: writes under `out_dir` what `request` asks of what the run's model can do: a sample grid
  and exported samples for models that sample, reconstructions for models that encode, interpolations for models
  that decode."""
  built, state, trainer = run.experiment, run.state, run.experiment.trainer
  samples_key, endpoints_key, corruption_key = jax.random.split(jax.random.key(request.seed), 3)
  if request.truncation is not None:
    sampling.style_space(built, request.truncation)  # Refuses a psi or a model that cannot take it, first.
  # Both files make one strip: read them before writing anything, so that an unreadable one leaves nothing half done.
  given_codes = latents.codes_of_files(built, state, request.from_images) if request.from_images else None
  written = []

  def save(name, grid):
    written.append(os.path.join(out_dir, name))
    pixels.save_png(written[-1], grid)

  truncation = request.truncation
  if trainer.sampler is not None and request.num_grid_images:
    save("samples.png", sampling.sample_grid(built, state, request.num_grid_images, samples_key, truncation))
  if trainer.sampler is not None and request.num_samples:
    samples = sampling.generate(built, state, request.num_samples, samples_key, request.batch_size, truncation)
    pixel_range = tuple(run.config.data.pixel_range)
    written.append(sampling.export(samples, pixel_range, os.path.join(out_dir, "samples"), request.file_format))
  if trainer.style_space is not None and request.style_mixing_size:
    grids = sampling.style_mixing_grids(built, state, request.style_mixing_size, samples_key, truncation or 1.0)
    for band, grid in grids.items():
      save(f"style_mixing_{band}.png", grid)

  test_images = None
  if trainer.encoder is not None:
    needed = max(request.num_reconstructions, 2 * request.num_interpolations, 1)
    test_images = sampling.first_images(built, run.data.eval, min(needed, len(run.data.eval)))
  if trainer.encoder is not None and request.num_reconstructions:
    images = test_images[: request.num_reconstructions]
    save("reconstructions.png", sampling.reconstruction_grid(built, state, images, corruption_key))

  if given_codes is not None:
    start, end = given_codes
  elif trainer.decoder is not None and request.num_interpolations:
    if request.endpoints:
      start, end = sampling.load_endpoints(request.endpoints, trainer.decoder.latent_size)
    else:
      start, end = sampling.interpolation_endpoints(
          built, state, request.num_interpolations, endpoints_key, test_images
      )
  else:
    return written
  grid = sampling.interpolation_grid(
      built, state, start, end, request.interpolation_steps, request.interpolation, request.truncation
  )
  save(f"interpolations_{request.interpolation}.png", grid)
  return written


def write_codes(
    run: runs.Run, out_dir: str, images_folder: str | None = None, labelled: bool = False, num_images: int = 1000
) -> list[str]:
  """experiments/encode.py: codes.npz (the codes of `images_folder`'s images, or of the first `num_images` test
  images, with their names and labels) and projection.png (their PCA projection) under `out_dir`."""
  built = run.experiment
  if built.trainer.encoder is None:
    raise errors.UserError(f"{run.workdir} holds a {run.config.family} model, which has no encoder; use an AE or VAE.")
  if images_folder:
    images = latents.read_folder(built, images_folder, labelled)
    source = images_folder
  else:
    images = latents.read_split(built, run.data.eval, num_images)
    source = f"the test split of {run.config.data.name}"
  codes = latents.encode(built, run.state, images.images)
  out_path = epath.Path(out_dir)
  out_path.mkdir(parents=True, exist_ok=True)
  arrays = {"codes": codes, "names": np.array(images.names)}
  if images.labels is not None:
    arrays["labels"] = images.labels
  with (out_path / "codes.npz").open("wb") as f:
    np.savez(f, **arrays)
  title = f"{len(codes)} images of {source}"
  pixels.save_png(str(out_path / "projection.png"), latents.projection_plot(images, codes, title))
  return [str(out_path / "codes.npz"), str(out_path / "projection.png")]


@dataclasses.dataclass(frozen=True)
class RestoreRequest:
  """What `restore_files` does.

  inputs:  an image file, or a folder of images (recursive).
  mask:    inpainting: a mask file, or a folder of masks named as the images (white: missing).
  degrade: degrade the (clean) inputs with the run's own degradation first (with `seed`), and write that too.
  scale:   super-resolution: the factor the user expects (refused unless the run's).
  tiling:  how large images are cut (see `restoring.Tiling`).
  max_pixels: the largest image read, in pixels (see `restoring.MAX_PIXELS`); larger ones are skipped, named.
  """

  inputs: str
  mask: str | None = None
  degrade: bool = False
  scale: int | None = None
  tiling: restoring.Tiling = restoring.Tiling()
  max_pixels: int = restoring.MAX_PIXELS
  seed: int = 0


def restore_files(run: runs.Run, out_dir: str, request: RestoreRequest) -> list[str]:
  """experiments/restore.py: restores every image of `request.inputs` into `out_dir`, under its name relative to the
  input folder (and NAME_degraded.png beside it with `degrade`). Inputs (or masks) that cannot be read are skipped
  and named in a warning (`pixels.warn_unreadable`). Raises `UserError` for a run that is not a restoration run, a
  scale or mask that does not fit it, and inputs none of which can be read."""
  names = _input_names(request.inputs)
  restorer = run.experiment.trainer.restorer
  if restorer is None:
    raise errors.UserError(
        f"{run.workdir} is a {run.config.family!r} run (config.family); restore.py needs a restoration run "
        "(configs/denoise.py, super_resolution.py or inpaint.py)."
    )
  degradation = restorer.degradation
  if request.scale is not None and request.scale != restorer.scale:
    raise errors.UserError(
        f"--scale={request.scale}, but the run in {run.workdir} was trained to "
        + (f"upscale by {restorer.scale}." if restorer.scale > 1 else f"{degradation.name}, not to upscale.")
    )
  if degradation.needs_mask and not (request.mask or request.degrade):
    raise errors.UserError(
        f"{degradation.title} needs --mask (white: missing), or --degrade to use the run's own masks."
    )
  channels = run.config.data.channels or 3
  restore = functools.partial(restoring.jitted_restore(run.experiment), run.state)
  degrade = jax.jit(restorer.degrade)
  inputs = os.path.expanduser(request.inputs)
  written, failed, colour = [], [], []
  for index, name in enumerate(console.track(names, len(names), "Restoring", unit="images")):
    try:
      if channels == 1 and pixels.has_colour(_input_path(inputs, name)):
        colour.append(name)
      image = pixels.read_image(_input_path(inputs, name), channels, request.max_pixels).astype(np.float32) / 255.0
      mask = _read_mask(request.mask, name, image.shape[:2], request.max_pixels) if request.mask else None
    except pixels.ImageTooLarge as e:
      failed.append(f"{name} ({e}; --max_pixels reads larger images)")
      continue
    except (OSError, ValueError) as e:
      failed.append(f"{name} ({e})")
      continue
    if request.degrade:
      key = jax.random.fold_in(jax.random.key(request.seed), index)
      image, mask = _degraded(degrade, image, restorer, key)
      written.append(_output_path(out_dir, name, "_degraded.png"))
      pixels.save_png(written[-1], pixels.to_uint8(image, pixels.UNIT_RANGE))
    restored = restoring.apply_tiled(restore, image, request.tiling, restorer.multiple, restorer.scale, mask)
    written.append(_output_path(out_dir, name))
    pixels.save_image(written[-1], pixels.to_uint8(restored, pixels.UNIT_RANGE))
  if len(failed) == len(names):
    raise errors.UserError(f"Could not read any of the {len(names)} inputs:\n  " + "\n  ".join(failed))
  pixels.warn_unreadable(failed, request.inputs)
  pixels.warn_colour_read_as_grey(colour, len(names), f"the run in {run.workdir}")
  logging.info("Wrote %d images to %s.", len(names) - len(failed), out_dir)
  return written


# translate.py's tiles: images of up to 1024 pixels a side are translated whole, as in training; larger ones in
# tiles with 64 pixels of context (more where the generator's multiple asks for it: a 256-pixel U-Net's is 256).
TRANSLATION_TILING = restoring.Tiling(tile=1024, margin=64, batch_size=4)


def translate_files(
    run: runs.Run,
    out_dir: str,
    inputs: str,
    direction: str,
    max_pixels: int,
    tiling: restoring.Tiling = TRANSLATION_TILING,
) -> list[str]:
  """experiments/translate.py: translates every image of `inputs` (a file, or a folder searched recursively) in
  `direction` into `out_dir`, under its name relative to the input folder, at its own size. An image of at most
  `tiling.tile` pixels a side is mirrored at its bottom and right edges up to the generator's multiple, translated
  whole and cut back; a larger one is translated in overlapping tiles (`restoring.apply_tiled`), so that memory
  stays bounded. Unreadable inputs (and images over `max_pixels`) are skipped and named in a warning. Raises
  `UserError` for a run that does not translate, a direction it lacks, and inputs none of which can be read."""
  names = _input_names(inputs)
  translator = run.experiment.trainer.translator
  if translator is None:
    raise errors.UserError(
        f"{run.workdir} is a {run.config.family!r} run (config.family); translate.py needs a translation run "
        "(configs/pix2pix.py or configs/cyclegan.py)."
    )
  if direction not in translator.directions:
    raise errors.UserError(
        f"--direction={direction}: the {run.config.translation.method} run in {run.workdir} translates "
        f"{' and '.join(translator.directions)} only."
    )
  channels = run.config.data.channels or 3
  pixel_range = tuple(run.config.data.pixel_range)
  translate = functools.partial(restoring.jitted_translate(run.experiment, direction), run.state)
  inputs = os.path.expanduser(inputs)
  written, failed, colour = [], [], []
  for name in console.track(names, len(names), "Translating", unit="images"):
    try:
      if channels == 1 and pixels.has_colour(_input_path(inputs, name)):
        colour.append(name)
      image = pixels.read_image(_input_path(inputs, name), channels, max_pixels)
    except (OSError, ValueError) as e:
      failed.append(f"{name} ({e})")
      continue
    height, width = image.shape[:2]
    scaled = pixels.rescale(image.astype(np.float32) / 255.0, pixels.UNIT_RANGE, pixel_range)
    if max(height, width) <= tiling.tile:
      padding = ((0, -height % translator.multiple), (0, -width % translator.multiple), (0, 0))
      translated = np.asarray(translate(np.pad(scaled, padding, "symmetric")[None]))[0, :height, :width]
    else:
      translated = restoring.apply_tiled(translate, scaled, tiling, translator.multiple)
    written.append(_output_path(out_dir, name))
    pixels.save_image(written[-1], pixels.to_uint8(translated, pixel_range))
  if len(failed) == len(names):
    raise errors.UserError(f"Could not read any of the {len(names)} inputs:\n  " + "\n  ".join(failed))
  pixels.warn_unreadable(failed, inputs)
  pixels.warn_colour_read_as_grey(colour, len(names), f"the run in {run.workdir}")
  logging.info("Wrote %d images to %s.", len(written), out_dir)
  return written


def _input_names(path: str) -> list[str]:
  """The images to restore or translate, as names relative to the input folder (a file: its own name)."""
  path = os.path.expanduser(path)
  if os.path.isfile(path):
    return [os.path.basename(path)]
  if not os.path.isdir(path):
    raise errors.UserError(f"--input={path} does not exist.")
  names = pixels.find_images(path)
  if not names:
    raise errors.UserError(f"--input={path} holds no images ({', '.join(pixels.IMAGE_SUFFIXES)}).")
  return names


def _input_path(inputs: str, name: str) -> str:
  return inputs if os.path.isfile(inputs) else os.path.join(inputs, name)


def _output_path(out_dir: str, name: str, suffix: str = "") -> str:
  stem, extension = os.path.splitext(name)
  return os.path.join(os.path.expanduser(out_dir), stem + (suffix or extension))


def _read_mask(masks: str, name: str, shape, max_pixels: int) -> np.ndarray:
  """The mask of image `name` as `[H, W, 1]` floats, 1 where missing (pixels above mid-grey)."""
  path = os.path.expanduser(masks)
  path = path if os.path.isfile(path) else os.path.join(path, name)
  mask = pixels.read_image(path, 1, max_pixels)
  if mask.shape[:2] != tuple(shape):
    raise ValueError(f"its mask {path} is {mask.shape[0]}x{mask.shape[1]}, the image {shape[0]}x{shape[1]}")
  return (mask > 127).astype(np.float32)


def _degraded(degrade, image, restorer, key):
  """The run's degradation of a clean image, its sides first cut to what the degradation needs."""
  multiple = restorer.scale
  height, width = (image.shape[0] // multiple) * multiple, (image.shape[1] // multiple) * multiple
  degraded, mask = degrade(image[None, :height, :width], key)
  return np.asarray(degraded[0]), None if mask is None else np.asarray(mask[0])
