r"""Translates your own images with a trained translation run (pix2pix or CycleGAN), at any size.

  python experiments/translate.py --workdir=/tmp/genjax/pix2pix_local --input=grey.png --output=/tmp/coloured
  python experiments/translate.py --workdir=/tmp/genjax/cyclegan_local --input=~/digits --output=/tmp/thin \
    --direction=b_to_a

--input is an image file or a folder, searched recursively (PNG, JPEG, BMP, TIFF, WebP). Each translated image is
written under --output with its name (and its subfolders), in the run's channels, at its own size: the networks are
fully convolutional, so each image is mirrored at its bottom and right edges up to the generator's multiple,
translated whole, and cut back. --direction is a_to_b (the run's inputs to its targets, the default) or b_to_a (a
CycleGAN's way back). A file that cannot be read is skipped, named at the end, and makes the exit status 1 once the
others are written.
"""

import os

from absl import flags

from genjax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A translation run's directory, as given to experiments/train.py.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
_INPUT = flags.DEFINE_string("input", None, "An image file, or a folder of images (recursive).")
_OUTPUT = flags.DEFINE_string("output", None, "The folder to write the translated images to.")
_DIRECTION = flags.DEFINE_string("direction", "a_to_b", "a_to_b (inputs to targets) or b_to_a (CycleGAN's way back).")
flags.mark_flags_as_required(["workdir", "input", "output"])


def main(overrides: list[str]) -> None:
  import jax
  import numpy as np
  import tqdm
  from absl import logging

  from genjax import checkpoint
  from genjax import errors
  from genjax import pixels
  from genjax import runs

  checkpoint.quiet_orbax_logging()
  names = _input_names(_INPUT.value)
  run = runs.load(_WORKDIR.value, _STEP.value, overrides)
  translator = run.experiment.trainer.translator
  if translator is None:
    raise errors.UserError(
        f"{_WORKDIR.value} is a {run.config.family!r} run (config.family); translate.py needs a translation run "
        "(configs/pix2pix.py or configs/cyclegan.py)."
    )
  if _DIRECTION.value not in translator.directions:
    raise errors.UserError(
        f"--direction={_DIRECTION.value}: the {run.config.translation.method} run in {_WORKDIR.value} translates "
        f"{' and '.join(translator.directions)} only."
    )
  channels = run.config.data.channels or 3
  pixel_range = tuple(run.config.data.pixel_range)
  translate = jax.jit(translator.translate, static_argnums=2, out_shardings=run.experiment.replicated)
  failed = []
  for name in tqdm.tqdm(names, unit="image", disable=len(names) == 1):
    try:
      image = pixels.read_image(_input_path(name), channels)
    except (OSError, ValueError) as e:
      failed.append(f"{name} ({e})")
      continue
    height, width = image.shape[:2]
    multiple = translator.multiple
    padding = ((0, -height % multiple), (0, -width % multiple), (0, 0))
    scaled = pixels.rescale(image.astype(np.float32) / 255.0, pixels.UNIT_RANGE, pixel_range)
    padded = np.pad(scaled, padding, "symmetric")
    translated = np.asarray(translate(run.state, padded[None], _DIRECTION.value))[0, :height, :width]
    pixels.save_image(_output_path(name), pixels.to_uint8(translated, pixel_range))
  logging.info("Wrote %d images to %s.", len(names) - len(failed), _OUTPUT.value)
  if failed:
    raise errors.UserError(f"Could not read {len(failed)} of {len(names)} inputs:\n  " + "\n  ".join(failed))


def _input_names(path: str) -> list[str]:
  """The images to translate, as names relative to --input's folder (a file: its own name)."""
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


def _output_path(name: str) -> str:
  return os.path.join(os.path.expanduser(_OUTPUT.value), name)


if __name__ == "__main__":
  cli.run(main)
