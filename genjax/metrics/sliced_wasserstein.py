"""Sliced Wasserstein distance between the Laplacian-pyramid patch distributions of two sets of images: the SWD that
ProGAN reports (Karras et al. 2018, "Progressive Growing of GANs", section 5 and appendix D; tkarras/
progressive_growing_of_gans, metrics/sliced_wasserstein.py), a perceptual comparison that needs no pretrained weights.

Per image, a Laplacian pyramid (the 5x5 binomial filter of cv2.pyrDown / pyrUp, mirrored borders) down to a side of
16 pixels; per level, 128 random 7x7 patches per image (fewer for sets of more than 64 images, at most
MAX_PATCHES in all), each channel standardised over the set's patches; per level,
the sliced Wasserstein distance (4 repeats of 128 random unit directions: the mean absolute difference of the sorted
projections), times 1e3, ProGAN's unit. Each level is a band of spatial frequencies, so the finest levels measure
detail (noise, blur, ringing) and the coarsest ones colour and layout. Lower is better; two draws of one distribution
score near 0. Pure NumPy/SciPy: it runs once per evaluation, on the host.
"""

from collections.abc import Sequence

import numpy as np

PATCH_SIZE = 7
PATCHES_PER_IMAGE = 128
# Per level and set, at most this many patches (fewer per image for sets of more than 64 images): ProGAN's 16,384
# images give 2 million, too many to sort at every evaluation (0.1 s per level for 8,192 on one CPU core). Two draws
# from one set of photographs then differ by about 30 at the finest level, a Gaussian blur of sigma 1 by about 90
# (tests/test_sliced_wasserstein.py).
MAX_PATCHES = 8_192
SMALLEST_SIDE = 16  # ProGAN's coarsest level.
_DIRECTION_REPEATS = 4
_DIRECTIONS_PER_REPEAT = 128
# cv2.pyrDown's kernel: the outer product of the binomial [1, 4, 6, 4, 1] / 16.
_BINOMIAL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256.0


def _blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  # Imported here: every training process imports this module through the evaluators, and SciPy's ndimage costs
  # it 0.6 s at start whether or not it scores SWD.
  import scipy.ndimage

  return scipy.ndimage.convolve(image, kernel[:, :, None], mode="mirror")


def laplacian_pyramid(image: np.ndarray, num_levels: int) -> list[np.ndarray]:
  """`[H, W, C]` -> `num_levels` bands, finest first: image - up(down(image)), ..., and the last low-pass image."""
  pyramid = [np.asarray(image, np.float32)]
  for _ in range(1, num_levels):
    smaller = _blur(pyramid[-1], _BINOMIAL)[::2, ::2]
    upsampled = np.zeros_like(pyramid[-1])
    upsampled[::2, ::2] = smaller
    pyramid[-1] = pyramid[-1] - _blur(upsampled, _BINOMIAL * 4.0)  # 4: three of four samples are the zeros put in.
    pyramid.append(smaller)
  return pyramid


def num_levels(images: Sequence[np.ndarray]) -> int:
  """Pyramid levels while the smallest image side, halved at each level, stays at least SMALLEST_SIDE."""
  side = min(min(image.shape[:2]) for image in images)
  if side < SMALLEST_SIDE:
    raise ValueError(f"SWD needs images of at least {SMALLEST_SIDE} pixels a side, got a side of {side}")
  return int(np.floor(np.log2(side / SMALLEST_SIDE))) + 1


def _descriptors(images: Sequence[np.ndarray], levels: int, rng: np.random.Generator) -> list[np.ndarray]:
  """Per level, `[len(images) * patches per image, 7 * 7 * C]` patches at random positions, channels standardised."""
  per_level = [[] for _ in range(levels)]
  half = PATCH_SIZE // 2
  patches_per_image = max(1, min(PATCHES_PER_IMAGE, MAX_PATCHES // len(images)))
  for image in images:
    for level, band in enumerate(laplacian_pyramid(image, levels)):
      rows = rng.integers(half, band.shape[0] - half, patches_per_image)
      columns = rng.integers(half, band.shape[1] - half, patches_per_image)
      offsets = np.arange(-half, half + 1)
      patches = band[(rows[:, None] + offsets)[:, :, None], (columns[:, None] + offsets)[:, None, :]]
      per_level[level].append(patches)  # [patches, 7, 7, C]
  descriptors = []
  for patches in per_level:
    patches = np.concatenate(patches)
    patches = (patches - patches.mean(axis=(0, 1, 2))) / np.maximum(patches.std(axis=(0, 1, 2)), 1e-8)
    descriptors.append(patches.reshape(len(patches), -1))
  return descriptors


def sliced_wasserstein(first: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> float:
  """Sliced Wasserstein-1 distance between two equal-sized point sets `[M, D]`: over 4 x 128 random unit directions,
  the mean absolute difference between the sorted projections of the two sets."""
  if first.shape != second.shape:
    raise ValueError(f"expected point sets of one shape, got {first.shape} and {second.shape}")
  results = []
  for _ in range(_DIRECTION_REPEATS):
    directions = rng.standard_normal((first.shape[1], _DIRECTIONS_PER_REPEAT)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    # [directions, points], each direction's projections contiguous: sorting along rows is far faster than along
    # the columns of [points, directions].
    projected_first, projected_second = (np.sort(directions.T @ points.T, axis=-1) for points in (first, second))
    results.append(np.mean(np.abs(projected_first - projected_second)))
  return float(np.mean(results))


def sliced_wasserstein_distance(
    references: Sequence[np.ndarray], images: Sequence[np.ndarray], seed: int = 0
) -> np.ndarray:
  """ProGAN's SWD x 1e3 at each pyramid level, finest first: `[levels]`, between two sets of `[H, W, C]` images
  (sizes may differ; any one pixel range for both). Sets of different sizes are compared on their first
  min(len) images, so both give as many patches. The mean over levels is the usual single number."""
  count = min(len(references), len(images))
  if count == 0:
    raise ValueError("SWD needs at least one image in each set")
  references, images = list(references)[:count], list(images)[:count]
  levels = num_levels([*references, *images])
  rng = np.random.default_rng(seed)
  reference_descriptors = _descriptors(references, levels, rng)
  image_descriptors = _descriptors(images, levels, rng)
  return np.array(
      [1e3 * sliced_wasserstein(first, second, rng) for first, second in zip(reference_descriptors, image_descriptors)]
  )
