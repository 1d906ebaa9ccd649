"""Pixel values between ranges, 8-bit images and image files: the one place that converts them.

Tools that read files of yours follow one policy (`warn_unreadable`): a file that cannot be read is skipped and
named in one warning, and only a tool that could read none of them stops with an error.

Images are NHWC (or HWC) arrays; a `pixel_range` is the (low, high) pair that black and white map to
(`config.data.pixel_range`: (0, 1) for Bernoulli likelihoods, (-1, 1) for tanh generators). `rescale` works on
NumPy and JAX arrays alike, so the same expression serves the input pipeline, metrics and plots. Image files are
read and written with Pillow, in the formats `IMAGE_SUFFIXES` lists.
"""

import contextlib
import os

import numpy as np
from absl import logging
from etils import epath
from PIL import Image
from PIL import ImageOps

UNIT_RANGE = (0.0, 1.0)
# Pillow refuses images over twice its MAX_IMAGE_PIXELS (about 179 million pixels) as possible decompression bombs:
# small files that expand to gigabytes. `read_image` applies a bound of its own instead, by name: this one by
# default, a larger one where a tool is made for large images (restore.py tiles them).
DEFAULT_MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def rescale(images, source_range: tuple[float, float], target_range: tuple[float, float]):
  """Maps values linearly so that `source_range` lands on `target_range` (no clipping)."""
  (source_low, source_high), (target_low, target_high) = source_range, target_range
  return (images - source_low) / (source_high - source_low) * (target_high - target_low) + target_low


def to_uint8(images, pixel_range: tuple[float, float]) -> np.ndarray:
  """Images in `pixel_range` -> uint8 in [0, 255], rounded to nearest; values outside the range are clipped."""
  unit = np.clip(rescale(np.asarray(images, np.float32), pixel_range, UNIT_RANGE), 0.0, 1.0)
  return np.round(unit * 255).astype(np.uint8)


def save_png(path: str, image: np.ndarray) -> None:
  """Writes a uint8 `[H, W, 1 or 3]` image as PNG (greyscale for one channel) at a local or gs:// path, creating the
  folder if needed."""
  save_image(path, image, "PNG")


def save_image(path: str, image: np.ndarray, image_format: str | None = None) -> None:
  """Writes a uint8 `[H, W, 1 or 3]` image in `image_format` (default: the one its suffix names; JPEG at quality
  95), creating the folder if needed."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  image_format = image_format or Image.registered_extensions()[path.suffix.lower()]
  with path.open("wb") as f:
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(f, format=image_format, quality=95)


def find_images(root: str) -> list[str]:
  """The image files under `root`, recursively, as sorted paths relative to it (hidden files and folders left
  out)."""
  found = []
  for directory, subdirectories, names in os.walk(root):
    subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
    found += [
        os.path.relpath(os.path.join(directory, name), root)
        for name in names
        if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
    ]
  return sorted(found)


class ImageTooLarge(OSError):
  """An image with more pixels than the reader's bound."""


def read_image(path: str, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
  """The image file at `path` as uint8 `[H, W, channels]` (1: grey, Pillow's luma; 3: RGB; transparency dropped),
  turned upright as its EXIF orientation says; 16-bit images are rescaled to 8 bits.
  Raises OSError (Pillow's `UnidentifiedImageError` included) for a file that cannot be read as an image, and
  `ImageTooLarge` for one of more than `max_pixels` pixels (found from its header, before anything is decoded)."""
  with _without_pillows_bound(), Image.open(path) as image:
    if image.width * image.height > max_pixels:
      raise ImageTooLarge(
          f"{image.width}x{image.height} = {image.width * image.height:,} pixels, more than the {max_pixels:,} read "
          "(a bound against decompression bombs)"
      )
    image.load()  # Decodes now, so that a truncated file fails here, not later.
    upright = ImageOps.exif_transpose(image)  # Photographs from cameras and phones, as they are shown.
    if upright.mode.startswith("I"):  # 16-bit grey: Pillow's conversion would clip it to 8 bits, not rescale it.
      upright = Image.fromarray(np.round(np.asarray(upright, np.float64) / 257.0).clip(0, 255).astype(np.uint8))
    return np.asarray(upright.convert("L" if channels == 1 else "RGB")).reshape(upright.height, upright.width, channels)


def has_colour(path: str) -> bool:
  """Whether the image file at `path` is in colour (from its header and palette; nothing is decoded)."""
  with _without_pillows_bound(), Image.open(path) as image:
    if image.mode == "P":
      palette = np.asarray(image.getpalette() or [], np.int32).reshape(-1, 3)
      return bool(np.any(palette != palette[:, :1]))
    return image.mode not in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def warn_colour_read_as_grey(colour_files: list[str], num_files: int, model: str) -> None:
  """Says once that colour images were read as grey for `model` (which takes one channel), naming the first."""
  if colour_files:
    logging.warning(
        "%d of %d images are in colour (e.g. %s), but %s takes grey images (1 channel, config.data.channels=1): they "
        "were read as grey (luma) and its outputs are grey. Use a run trained on colour (config.data.channels=3) "
        "to keep the colour.",
        len(colour_files),
        num_files,
        colour_files[0],
        model,
    )


@contextlib.contextmanager
def _without_pillows_bound():
  """Pillow's own decompression-bomb check off while `read_image` applies its bound."""
  pillows_bound = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None
  try:
    yield
  finally:
    Image.MAX_IMAGE_PIXELS = pillows_bound


def warn_unreadable(unreadable: list[str], where: str) -> None:
  """Names the files that were skipped because they could not be read ("path (why)"), in one warning."""
  if unreadable:
    files = "file" if len(unreadable) == 1 else "files"
    logging.warning("Skipped %d unreadable %s in %s:\n  %s", len(unreadable), files, where, "\n  ".join(unreadable))
