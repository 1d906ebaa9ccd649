"""Pixel values between ranges, 8-bit images and PNG files: the one place that converts them.

Images are NHWC (or HWC) arrays; a `pixel_range` is the (low, high) pair that black and white map to
(`config.data.pixel_range`: (0, 1) for Bernoulli likelihoods, (-1, 1) for tanh generators). `rescale` works on
NumPy and JAX arrays alike, so the same expression serves the input pipeline, metrics and plots.
"""

import numpy as np
from etils import epath
from PIL import Image

UNIT_RANGE = (0.0, 1.0)


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
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("wb") as f:
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(f, format="PNG")
