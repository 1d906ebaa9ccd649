r"""Restores your own images with a trained restoration run: denoises, upscales or fills them, at any size.

  python experiments/restore.py --workdir=/tmp/genjax/denoise_local --input=noisy.png --output=/tmp/restored
  python experiments/restore.py --workdir=/tmp/genjax/sr_local --input=~/photos --output=/tmp/upscaled
  python experiments/restore.py --workdir=/tmp/genjax/inpaint_local --input=photo.png --mask=mask.png --output=/tmp/filled
  python experiments/restore.py --workdir=/tmp/genjax/denoise_local --input=~/clean --output=/tmp/demo --degrade

--input is an image file or a folder, searched recursively (PNG, JPEG, BMP, TIFF, WebP). Each restored image is
written under --output with its name (and its subfolders), in the run's channels (grey or colour). Inpainting reads
--mask, a file or a folder with the same names (white: missing); its size must be the image's. --degrade first
applies the run's own degradation (noise, downscaling or its masks; a fixed seed) to clean images and writes it
beside the result as NAME_degraded.png: a quick way to see what the model does. Images larger than --tile are
restored in overlapping tiles (see genjax/restoring.py), so memory stays bounded. A file that cannot be read is
skipped, named at the end, and makes the exit status 1 once the others are written.
"""

import os

from absl import flags

from genjax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A restoration run's directory, as given to experiments/train.py.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
_INPUT = flags.DEFINE_string("input", None, "An image file, or a folder of images (recursive).")
_OUTPUT = flags.DEFINE_string("output", None, "The folder to write the restored images to.")
_MASK = flags.DEFINE_string("mask", None, "Inpainting: a mask file, or a folder of masks named as the images.")
_DEGRADE = flags.DEFINE_bool("degrade", False, "Degrade the (clean) inputs with the run's degradation first.")
_SCALE = flags.DEFINE_integer("scale", None, "Super-resolution: the factor expected (refused unless the run's).")
_TILE = flags.DEFINE_integer("tile", 256, "Tile side in input pixels for large images.", lower_bound=16)
_MARGIN = flags.DEFINE_integer("margin", 16, "Context kept around each tile (overlap: twice this).", lower_bound=0)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Tiles restored at once.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of --degrade.", lower_bound=0)
flags.mark_flags_as_required(["workdir", "input", "output"])


def main(overrides: list[str]) -> None:
  import functools

  import jax
  import numpy as np
  import tqdm
  from absl import logging

  from genjax import checkpoint
  from genjax import errors
  from genjax import pixels
  from genjax import restoring
  from genjax import runs

  checkpoint.quiet_orbax_logging()
  names = _input_names(_INPUT.value)
  run = runs.load(_WORKDIR.value, _STEP.value, overrides)
  restorer = run.experiment.trainer.restorer
  if restorer is None:
    raise errors.UserError(
        f"{_WORKDIR.value} is a {run.config.family!r} run (config.family); restore.py needs a restoration run "
        "(configs/denoise.py, super_resolution.py or inpaint.py)."
    )
  degradation = restorer.degradation
  if _SCALE.value is not None and _SCALE.value != restorer.scale:
    raise errors.UserError(
        f"--scale={_SCALE.value}, but the run in {_WORKDIR.value} was trained to "
        + (f"upscale by {restorer.scale}." if restorer.scale > 1 else f"{degradation.name}, not to upscale.")
    )
  if degradation.needs_mask and not (_MASK.value or _DEGRADE.value):
    raise errors.UserError(
        f"{degradation.title} needs --mask (white: missing), or --degrade to use the run's own masks."
    )
  channels = run.config.data.channels or 3
  restore = functools.partial(restoring.jitted_restore(run.experiment), run.state)
  degrade = jax.jit(restorer.degrade)
  tiling = restoring.Tiling(_TILE.value, _MARGIN.value, _BATCH_SIZE.value)
  failed = []
  for index, name in enumerate(tqdm.tqdm(names, unit="image", disable=len(names) == 1)):
    try:
      image = pixels.read_image(_input_path(name), channels).astype(np.float32) / 255.0
      mask = _read_mask(name, image.shape[:2]) if _MASK.value else None
    except (OSError, ValueError) as e:
      failed.append(f"{name} ({e})")
      continue
    if _DEGRADE.value:
      image, mask = _degraded(degrade, image, restorer, jax.random.fold_in(jax.random.key(_SEED.value), index))
      pixels.save_png(_output_path(name, "_degraded.png"), pixels.to_uint8(image, pixels.UNIT_RANGE))
    restored = restoring.restore_image(restore, restorer, image, mask, tiling)
    pixels.save_image(_output_path(name), pixels.to_uint8(restored, pixels.UNIT_RANGE))
  logging.info("Wrote %d images to %s.", len(names) - len(failed), _OUTPUT.value)
  if failed:
    raise errors.UserError(f"Could not read {len(failed)} of {len(names)} inputs:\n  " + "\n  ".join(failed))


def _input_names(path: str) -> list[str]:
  """The images to restore, as names relative to --input's folder (a file: its own name)."""
  from genjax import errors
  from genjax import pixels

  path = os.path.expanduser(path)
  if os.path.isfile(path):
    return [os.path.basename(path)]
  if not os.path.isdir(path):
    raise errors.UserError(f"--input={path} does not exist.")
  names = pixels.find_images(path)
  if not names:
    raise errors.UserError(f"--input={path} holds no images ({', '.join(pixels.IMAGE_SUFFIXES)}).")
  return names


def _input_path(name: str) -> str:
  path = os.path.expanduser(_INPUT.value)
  return path if os.path.isfile(path) else os.path.join(path, name)


def _output_path(name: str, suffix: str = "") -> str:
  stem, extension = os.path.splitext(name)
  return os.path.join(os.path.expanduser(_OUTPUT.value), stem + (suffix or extension))


def _read_mask(name: str, shape):
  """The mask of image `name` as `[H, W, 1]` floats, 1 where missing (pixels above mid-grey)."""
  import numpy as np

  from genjax import pixels

  path = os.path.expanduser(_MASK.value)
  path = path if os.path.isfile(path) else os.path.join(path, name)
  mask = pixels.read_image(path, 1)
  if mask.shape[:2] != tuple(shape):
    raise ValueError(f"its mask {path} is {mask.shape[0]}x{mask.shape[1]}, the image {shape[0]}x{shape[1]}")
  return (mask > 127).astype(np.float32)


def _degraded(degrade, image, restorer, key):
  """The run's degradation of a clean image, its sides first cut to what the degradation needs."""
  import numpy as np

  multiple = restorer.scale
  height, width = (image.shape[0] // multiple) * multiple, (image.shape[1] // multiple) * multiple
  degraded, mask = degrade(image[None, :height, :width], key)
  return np.asarray(degraded[0]), None if mask is None else np.asarray(mask[0])


if __name__ == "__main__":
  cli.run(main)
