"""Specification of genjax.metrics.sliced_wasserstein: ProGAN's SWD between Laplacian-pyramid patch distributions."""

import numpy as np
import pytest
import scipy.ndimage
import skimage.data

from genjax.metrics import sliced_wasserstein


@pytest.fixture(scope="module")
def photograph_crops() -> list[np.ndarray]:
  """Thirty-two 32x32 crops of a photograph, in [0, 1]."""
  image = skimage.data.astronaut()[::2, ::2] / 255.0  # 256x256
  return [
      image[top : top + 32, left : left + 32].astype(np.float32)
      for top in range(0, 256, 32)
      for left in range(0, 256, 64)
  ]


def test_one_dimensional_sliced_wasserstein_is_the_distance_between_sorted_samples():
  # In one dimension every direction is +-1: the mean |sorted(a) - sorted(b)|, whatever the order of the points.
  first, second = np.array([[2.0], [0.0], [1.0]]), np.array([[3.0], [1.0], [2.0]])
  assert sliced_wasserstein.sliced_wasserstein(first, second, np.random.default_rng(0)) == pytest.approx(1.0)


def test_laplacian_pyramid_bands_add_back_to_the_image():
  image = np.random.default_rng(0).uniform(0, 1, (32, 32, 3)).astype(np.float32)
  fine, coarse = sliced_wasserstein.laplacian_pyramid(image, 2)
  assert fine.shape == (32, 32, 3) and coarse.shape == (16, 16, 3)
  upsampled = np.zeros_like(image)
  upsampled[::2, ::2] = coarse
  kernel = sliced_wasserstein._BINOMIAL[:, :, None] * 4.0
  np.testing.assert_allclose(fine + scipy.ndimage.convolve(upsampled, kernel, mode="mirror"), image, atol=1e-6)
  # A constant image has no detail: its fine band is zero.
  flat_fine, _ = sliced_wasserstein.laplacian_pyramid(np.full((32, 32, 1), 0.5, np.float32), 2)
  np.testing.assert_allclose(flat_fine, 0.0, atol=1e-6)


def test_identical_sets_score_near_zero_and_blurred_sets_far(photograph_crops):
  same = sliced_wasserstein.sliced_wasserstein_distance(photograph_crops, photograph_crops)
  slightly, strongly = (
      sliced_wasserstein.sliced_wasserstein_distance(
          photograph_crops, [scipy.ndimage.gaussian_filter(crop, sigma=(sigma, sigma, 0)) for crop in photograph_crops]
      )
      for sigma in (1.0, 2.0)
  )
  assert same.shape == strongly.shape == (2,)  # levels of 32 and 16 pixels
  # Two independent draws of patches from one set differ by sampling noise only (about 30 with 4096 patches);
  # blurring changes the finest band most, and more the stronger it is.
  assert strongly[0] > slightly[0] > 2 * same[0]
  assert np.mean(strongly) > np.mean(slightly) > np.mean(same)


def test_images_smaller_than_the_coarsest_level_are_refused():
  with pytest.raises(ValueError, match="at least 16 pixels"):
    sliced_wasserstein.sliced_wasserstein_distance([np.zeros((8, 8, 3))], [np.zeros((8, 8, 3))])
